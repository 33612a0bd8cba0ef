"""The TF32 scope of the CUDA encoder (csrc/tf32_scope.h) switches cuBLAS TF32 through the
per-backend setting and restores the user's exact setting: torch.get_float32_matmul_precision()
keeps its value ("medium" stays "medium") and keeps working (the legacy flag, mixed with the new
API, made it raise). The scope is ATen-only, so this runs on the CPU through a test hook."""

import pytest
import torch

from satclip.ops import extension

pytestmark = pytest.mark.skipif(not extension.extension_loaded(), reason="compiled extension not loaded")


@pytest.mark.parametrize("user", ["highest", "high", "medium"])
@pytest.mark.parametrize("on", [False, True])
def test_user_setting_comes_back(user, on):
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision(user)
        cuda_user = torch.backends.cuda.matmul.fp32_precision
        inside, after = torch.ops.satclip._tf32_scope_check(on).split("|")
        assert inside == ("tf32" if on else "ieee")  # the scope's own mode while it runs
        assert after == ("ieee" if user == "highest" else "tf32")
        assert torch.get_float32_matmul_precision() == user
        assert torch.backends.cuda.matmul.fp32_precision == cuda_user
    finally:
        torch.set_float32_matmul_precision(before)

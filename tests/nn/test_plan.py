"""EncodePlan: what the fused encoder runs, resolved once from the options for a degree, dtype
and device (satclip.functional.plan) and kept by the encoder (the manifest's copy:
tests/embedding/test_manifest_plan.py)."""

import dataclasses

import pytest
import torch

from satclip import functional as F
from satclip.nn import LocationEncoder
from satclip.options import EncodeOptions, EncodePlan


def test_plan_resolves_the_cpu_tf32_mapping_and_the_tile():
    p = F.plan(EncodeOptions(precision="tf32"), 10, torch.float32, "cpu")
    assert (p.precision, p.run_precision, p.dtype, p.device) == ("tf32", "float32", "float32", "cpu")
    assert p.tile_points == F.default_tile_points(10, 4, "cpu", compiled=F._COMPILED_ENCODER["cpu"])
    assert F.plan(EncodeOptions(precision="tf32"), 10, torch.float32, "cuda").run_precision == "tf32"
    assert F.plan(EncodeOptions(tile_points=100), 10, torch.float64, "cpu").tile_points == 100
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.tile_points = 1


def test_plan_is_the_one_check_of_precision_against_dtype():
    with pytest.raises(ValueError, match="precision='bf16' applies to float32 encoders, got torch.float64"):
        F.plan(EncodeOptions(precision="bf16"), 10, torch.float64, "cpu")
    enc = LocationEncoder(4, 16, 1, 8, precision="float16").double().eval()
    with pytest.raises(ValueError, match="precision='float16' applies to float32 encoders"), torch.no_grad():
        enc(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"legendre_polys must be in \[1, "):
        F.plan(EncodeOptions(), 0, torch.float32, "cpu")


def test_the_encoder_keeps_one_plan_per_options_dtype_and_device():
    enc = LocationEncoder(4, 16, 1, 8).eval()
    first = enc.plan()
    assert isinstance(first, EncodePlan) and enc.plan() is first
    enc.precision = "bf16"
    second = enc.plan()
    assert second is not first and second.precision == "bf16" and enc.plan() is second
    enc.precision = "float32"
    assert enc.plan(torch.float64).dtype == "float64"

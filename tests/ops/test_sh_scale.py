"""satclip::spherical_harmonics with per-feature factors (``scale``, the SH conventions applied
where the kernel stores): equal to the unscaled op times the factors, bit for bit on the CPU;
gradients (gradcheck, float64); partial blocks and strided inputs; refusals naming ``scale``."""

import pytest
import torch

from conftest import lonlat_points
from satclip import functional as F
from satclip.ops import ops
from satclip.ops import reference as ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 301])  # empty, one point, partial vector blocks
def test_scaled_equals_unscaled_times_factors(dtype, n):
    x = lonlat_points(n, dtype=dtype)[:n] if n else torch.zeros(0, 2, dtype=dtype)
    for L, convention in ((10, "analytic"), (17, "closed-form")):
        f = F.convention_factors(L, convention, dtype=dtype)
        got = ops.spherical_harmonics(x, L, f)
        assert torch.equal(got, ops.spherical_harmonics(x, L) * f)
        torch.testing.assert_close(got, ref.spherical_harmonics(x, L, f))
    strided = lonlat_points(50, dtype=dtype).t().contiguous().t()
    f = F.convention_factors(6, "analytic", dtype=dtype)
    assert torch.equal(ops.spherical_harmonics(strided, 6, f), ops.spherical_harmonics(strided, 6) * f)


def test_public_function_and_gradients():
    x = lonlat_points(20).requires_grad_(True)
    f = F.convention_factors(5, "analytic", dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: ops.spherical_harmonics(p, 5, f), (x,))
    torch.testing.assert_close(F.spherical_harmonics(x, 5), ops.spherical_harmonics(x, 5) * f)


def test_refusals():
    x = lonlat_points(3)
    with pytest.raises((ValueError, RuntimeError), match=r"scale of shape \[16\]"):
        ops.spherical_harmonics(x, 4, torch.ones(15, dtype=torch.float64))
    with pytest.raises((ValueError, RuntimeError), match="scale .* must match lonlat"):
        ops.spherical_harmonics(x, 4, torch.ones(16, dtype=torch.float32))
    with pytest.raises(ValueError, match="does not take gradients"):
        ops.spherical_harmonics(x, 4, torch.ones(16, dtype=torch.float64, requires_grad=True))

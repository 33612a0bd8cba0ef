"""Spherical harmonics, forward and forward+backward: compiled kernel (the raw orthonormal op, and
forward also the public satclip.functional.spherical_harmonics with its default convention and
input check) vs the pure-PyTorch fallback (and sphericart-torch in float64 where its accuracy holds: l <= 87)."""

import pytest
import torch

from conftest import points, run, size
from satclip.ops import reference as ref
from satclip.ops.extension import has_kernel
from satclip.ops import ops
from satclip import functional as F

try:
    import sphericart.torch as sphericart_torch
except ImportError:  # optional benchmark dependency
    sphericart_torch = None

CASES = [(10, 100_000), (40, 100_000), (100, 10_000)]  # L = 100: 1e4 points (1e5 would be 4-8 GB)
DTYPES = {"fp32": torch.float32, "fp64": torch.float64}


def _impl_fn(impl, L, dtype, device):
    if impl == "public":  # what users call: the default (analytic) convention, input validation
        if not has_kernel("spherical_harmonics", device):
            pytest.skip(f"no compiled kernel on {device}")
        return lambda x: F.spherical_harmonics(x, L)
    if impl == "compiled":
        if not has_kernel("spherical_harmonics", device):
            pytest.skip(f"no compiled kernel on {device}")
        return lambda x: ops.spherical_harmonics(x, L)
    if impl == "fallback":
        return lambda x: ref.spherical_harmonics(x, L)
    if impl == "sphericart":
        if sphericart_torch is None:
            pytest.skip("sphericart-torch not installed")
        if dtype != torch.float64 or L > 88:
            pytest.skip("sphericart is accurate only in float64 and for l <= 87")
        sh = sphericart_torch.SphericalHarmonics(L - 1)

        def f(x):
            lon, lat = torch.deg2rad(x[:, 0]), torch.deg2rad(x[:, 1])
            xyz = torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], 1)
            return sh(xyz)
        return f
    raise ValueError(impl)


@pytest.mark.parametrize("impl", ["compiled", "public", "fallback", "sphericart"])
@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("L,n", CASES)
def bench_sh_forward(benchmark, L, n, dt, impl):
    benchmark.group = f"sh-fwd-L{L}-{dt}"
    n = size(n)
    x = points(n, DTYPES[dt])
    fn = _impl_fn(impl, L, DTYPES[dt], "cpu")
    with torch.no_grad():
        run(benchmark, lambda: fn(x), n_points=n, impl=impl, L=L, dtype=dt, rounds=3)


@pytest.mark.parametrize("impl", ["compiled", "fallback", "sphericart"])
@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("L,n", CASES)
def bench_sh_forward_backward(benchmark, L, n, dt, impl):
    benchmark.group = f"sh-fwdbwd-L{L}-{dt}"
    n = size(n) if L < 100 else size(n // 2)
    x = points(n, DTYPES[dt])
    g = torch.randn(n, L * L, dtype=DTYPES[dt])
    fn = _impl_fn(impl, L, DTYPES[dt], "cpu")

    def step():
        xr = x.clone().requires_grad_(True)
        fn(xr).backward(g)
        return xr.grad

    run(benchmark, step, n_points=n, impl=impl, L=L, dtype=dt, rounds=3)

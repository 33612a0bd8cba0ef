"""Gradients of the spherical harmonics w.r.t. (lon, lat): kernel, twin, autograd, gradcheck."""

import pytest
import torch

from conftest import lonlat_points, needs_compiled_cpu
from satclip.ops import reference as ref
from satclip import functional as F
from satclip.ops import ops


def _autograd_of_reference(x, g, L):
    xa = x.clone().requires_grad_(True)
    (ref.spherical_harmonics(xa, L) * g).sum().backward()
    return xa.grad


@pytest.mark.parametrize("L", [1, 2, 10, 40])
def test_reference_backward_matches_autograd(L):
    x = lonlat_points(100)
    g = torch.randn(x.shape[0], L * L, dtype=torch.float64)
    got = ref.spherical_harmonics_backward(g, x, L)
    assert torch.allclose(got, _autograd_of_reference(x, g, L), atol=1e-10, rtol=1e-10)


@needs_compiled_cpu
@pytest.mark.parametrize("L", [1, 3, 10, 40, 100])
def test_kernel_backward_float64(L):
    x = lonlat_points(100)
    g = torch.randn(x.shape[0], L * L, dtype=torch.float64)
    got = ops.spherical_harmonics_backward(g, x, L)
    want = ref.spherical_harmonics_backward(g, x, L)
    scale = want.abs().max().item() + 1.0
    assert (got - want).abs().max().item() < 1e-11 * scale


@needs_compiled_cpu
def test_kernel_backward_float32_relative():
    L = 40
    x = lonlat_points(200)
    g = torch.randn(x.shape[0], L * L, dtype=torch.float64)
    got = ops.spherical_harmonics_backward(g.float(), x.float(), L).double()
    want = ref.spherical_harmonics_backward(g, x, L)
    assert ((got - want).norm() / want.norm()).item() < 1e-4


def test_finite_differences_float64():
    # central differences in degrees, away from the poles (where lon has no meaning)
    L = 12
    x = lonlat_points(40)
    x = x[x[:, 1].abs() < 89]
    g = torch.randn(x.shape[0], L * L, dtype=torch.float64)
    got = ops.spherical_harmonics_backward(g, x, L)
    h = 1e-5
    for col in range(2):
        e = torch.zeros_like(x)
        e[:, col] = h
        fd = ((ops.spherical_harmonics(x + e, L) - ops.spherical_harmonics(x - e, L)) * g).sum(1) / (2 * h)
        assert torch.allclose(got[:, col], fd, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("L", [1, 5, 40, 200])
def test_gradients_finite_at_the_poles(L):
    x = torch.tensor([[0.0, 90.0], [77.0, -90.0], [180.0, 90.0], [-3.0, 89.99999]], dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        xa = x.to(dtype).requires_grad_(True)
        F.spherical_harmonics(xa, L).sum().backward()
        assert torch.isfinite(xa.grad).all()


def test_gradcheck_spherical_harmonics():
    x = lonlat_points(6).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ops.spherical_harmonics(t, 6), (x,), eps=1e-6, atol=1e-6)


def test_gradgradcheck_spherical_harmonics():
    x = lonlat_points(4)[:4].requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: ops.spherical_harmonics(t, 4), (x,), eps=1e-6, atol=1e-5)


def test_gradcheck_backward_op():
    L = 5
    x = lonlat_points(5)[:5].requires_grad_(True)
    g = torch.randn(5, L * L, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda gg, xx: ops.spherical_harmonics_backward(gg, xx, L), (g, x),
                                    eps=1e-6, atol=1e-5)

"""The compiled CPU spherical-harmonics kernel vs the reference twin vs float64 references."""

import math

import mpmath
import pytest
import torch

from conftest import lonlat_points, needs_compiled_cpu, scipy_real_sh
from satclip.ops import reference as ref
from satclip.ops import ops

pytestmark = needs_compiled_cpu


@pytest.mark.parametrize("L", [1, 2, 3, 10, 40, 100])
def test_float64_kernel_vs_scipy_and_reference(L):
    x = lonlat_points(150)
    y = ops.spherical_harmonics(x, L)
    assert y.shape == (x.shape[0], L * L) and y.dtype == torch.float64
    assert (y - scipy_real_sh(x, L)).abs().max().item() < 1e-10
    assert (y - ref.spherical_harmonics(x, L)).abs().max().item() < 1e-12


@pytest.mark.parametrize("L,tol", [(10, 1e-5), (40, 1e-4), (100, 1e-3)])
def test_float32_kernel_accuracy(L, tol):
    x = lonlat_points(300)
    y = ops.spherical_harmonics(x.float(), L)
    assert y.dtype == torch.float32
    want = scipy_real_sh(x, L)
    assert (y.double() - want).abs().max().item() < tol
    # the twin computes the same recurrence in the same precision
    assert (y - ref.spherical_harmonics(x.float(), L)).abs().max().item() < tol


def test_float32_l200_finite_and_accurate():
    x = lonlat_points(40)
    y = ops.spherical_harmonics(x.float(), 200)
    assert torch.isfinite(y).all()
    want = ref.spherical_harmonics(x, 200)  # float64 recurrence, validated vs scipy up to L=100 above
    assert (y.double() - want).abs().max().item() < 1e-2


def _mp_real_sh(l, m, lon, lat):
    """Y_lm by the normalised column recurrence in 50-digit arithmetic (no rounding or
    underflow to speak of; mpmath.legenp's hypergeometric series does not converge at l ~ 1000)."""
    with mpmath.workdps(50):
        lat_r, mm = mpmath.radians(lat), abs(m)
        z, u = mpmath.sin(lat_r), mpmath.cos(lat_r)
        if abs(lat) == 90:
            u = mpmath.mpf(0)
        q = 1 / mpmath.sqrt(4 * mpmath.pi)
        for k in range(1, mm + 1):
            q *= mpmath.sqrt(mpmath.mpf(2 * k + 1) / (2 * k)) * u
        q2, q1 = mpmath.mpf(0), q
        for k in range(mm + 1, l + 1):
            a = mpmath.sqrt(mpmath.mpf(4 * k * k - 1) / (k * k - mm * mm))
            b = mpmath.sqrt(mpmath.mpf((k - 1) ** 2 - mm * mm) * (2 * k + 1) / ((2 * k - 3) * (k * k - mm * mm))) \
                if k > mm + 1 else 0
            q2, q1 = q1, a * z * q1 - b * q2
        if m == 0:
            return q1
        trig = mpmath.cos if m > 0 else mpmath.sin
        return mpmath.sqrt(2) * q1 * trig(mm * mpmath.radians(lon))


def test_float64_l1000_against_mpmath():
    x = torch.tensor([[12.3, 45.6], [-170.0, -80.5], [33.0, 10.0], [100.0, 89.0], [0.0, 90.0]], dtype=torch.float64)
    L = 1000
    y = ops.spherical_harmonics(x, L)
    assert torch.isfinite(y).all()
    for l, m in [(999, 0), (999, 5), (999, -300), (999, 999), (500, -250), (700, 650), (998, -1), (1, 1)]:
        for i in range(x.shape[0]):
            want = float(_mp_real_sh(l, m, float(x[i, 0]), float(x[i, 1])))
            got = y[i, l * l + l + m].item()
            # |Y| reaches sqrt((2l+1)/(4 pi)) = 12.6 at the poles for l = 999: relative there
            assert abs(got - want) < 1e-10 * max(1.0, abs(want)), (l, m, i, got, want)


def test_float64_l200_kernel_vs_scipy():
    x = lonlat_points(30)
    assert (ops.spherical_harmonics(x, 200) - scipy_real_sh(x, 200)).abs().max().item() < 1e-10


def test_strided_and_transposed_input():
    x = lonlat_points(100)
    wide = torch.zeros(x.shape[0], 5, dtype=torch.float64)
    wide[:, 1], wide[:, 3] = x[:, 0], x[:, 1]
    strided = wide[:, 1::2]
    assert not strided.is_contiguous()
    t = x.t().contiguous().t()  # column-major [N, 2]
    want = ops.spherical_harmonics(x, 12)
    assert torch.equal(ops.spherical_harmonics(strided, 12), want)
    assert torch.equal(ops.spherical_harmonics(t, 12), want)


@pytest.mark.parametrize("n", [0, 1, 7, 17, 33])
def test_sizes_not_multiple_of_lane_block(n):
    x = lonlat_points(n)[:n]
    y = ops.spherical_harmonics(x, 9)
    assert y.shape == (n, 81)
    assert torch.allclose(y, ref.spherical_harmonics(x, 9), atol=1e-13)


def test_threads_give_identical_results():
    x = lonlat_points(500)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = ops.spherical_harmonics(x, 20)
        torch.set_num_threads(max(2, old))
        b = ops.spherical_harmonics(x, 20)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a, b)

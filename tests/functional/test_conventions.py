"""SatCLIP's SH conventions: a golden test of "analytic" at L = 10 from the design formula."""

import math

import numpy as np
import pytest
import torch

from conftest import lonlat_points, original_sh, scipy_real_sh
import satclip.functional as F

# Written out by hand from the formula in the design notes (value = (-1)^l * pi * Pbar_l0(z)
# for m = 0, (-1)^l * sqrt2 * Pbar_lm(z) * cos(m lon) / sin(|m| lon) otherwise, z = sin(lat),
# Pbar orthonormal without Condon-Shortley phase), at (lon, lat) = (30, 60):
#   z = sqrt(3)/2, cos(lat) = 1/2.
_Z, _U = math.sqrt(3) / 2, 0.5
_GOLDEN_30_60 = {
    (0, 0): math.pi * 0.5 / math.sqrt(math.pi),                                  # pi * 1/sqrt(4 pi)
    (1, 0): -math.pi * math.sqrt(3 / (4 * math.pi)) * _Z,
    (1, 1): -math.sqrt(2) * math.sqrt(3 / (8 * math.pi)) * _U * math.cos(math.radians(30)),
    (1, -1): -math.sqrt(2) * math.sqrt(3 / (8 * math.pi)) * _U * math.sin(math.radians(30)),
    (2, 0): math.pi * math.sqrt(5 / (4 * math.pi)) * 0.5 * (3 * _Z**2 - 1),
    (2, 2): math.sqrt(2) * math.sqrt(15 / (32 * math.pi)) * _U**2 * math.cos(math.radians(60)),
    (2, -1): math.sqrt(2) * math.sqrt(15 / (8 * math.pi)) * _Z * _U * math.sin(math.radians(30)),
    (3, 0): -math.pi * math.sqrt(7 / (4 * math.pi)) * 0.5 * (5 * _Z**3 - 3 * _Z),
}


def test_golden_analytic_l10():
    y = F.spherical_harmonics(torch.tensor([[30.0, 60.0]], dtype=torch.float64), 10, convention="analytic")
    assert y.shape == (1, 100)
    for (l, m), v in _GOLDEN_30_60.items():
        assert y[0, l * l + l + m].item() == pytest.approx(v, abs=1e-13), (l, m)
    # Y_00 of the original generator: sqrt(pi)/2 (the pi slip on m = 0).
    assert y[0, 0].item() == pytest.approx(0.886226925452758, abs=1e-14)


@pytest.mark.parametrize("convention", ["analytic", "closed-form", "orthonormal"])
def test_conventions_against_scipy(convention):
    L = 10
    x = lonlat_points(100)
    base = scipy_real_sh(x, L)
    l = np.repeat(np.arange(L), 2 * np.arange(L) + 1)
    m = np.concatenate([np.arange(-k, k + 1) for k in range(L)])
    if convention == "analytic":
        f = (-1.0) ** l * np.where(m == 0, math.pi, 1.0)
    elif convention == "closed-form":
        f = (-1.0) ** (l + np.abs(m))
    else:
        f = np.ones(L * L)
    want = base * torch.from_numpy(f)
    got = F.spherical_harmonics(x, L, convention=convention)
    assert (got - want).abs().max().item() < 1e-12


def test_unknown_convention():
    with pytest.raises(ValueError, match="unknown convention"):
        F.spherical_harmonics(torch.zeros(1, 2, dtype=torch.float64), 3, convention="shtools")


def test_analytic_matches_a_recreation_of_the_original_generator():
    # sympy's assoc_legendre (with Condon-Shortley phase) in cos(lat + 90), phi = lon + 180,
    # (-1)^m and the pi slip, evaluated in float64 as the original does: at low degree the
    # expanded polynomials are still accurate, so the two must agree to rounding.
    original_analytic_sh = original_sh()

    x = lonlat_points(200)
    diff = (F.spherical_harmonics(x, 6, convention="analytic") - original_analytic_sh(x, 6)).abs().max(1).values
    # Near the poles the original's (1 - cos(theta)^2)^(m/2) cancels catastrophically (~1e-11
    # at 1e-4 deg from the pole); elsewhere the two agree to rounding.
    near_pole = x[:, 1].abs() > 89.99
    assert diff[~near_pole].max().item() < 1e-12
    assert diff[near_pole].max().item() < 1e-9

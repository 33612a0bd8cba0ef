"""The pure-PyTorch spherical harmonics against independent float64 references (scipy)."""

import math

import pytest
import torch

from conftest import lonlat_points, scipy_real_sh
from satclip.ops import reference as ref


@pytest.mark.parametrize("L", [1, 2, 10, 40, 100])
def test_float64_matches_scipy(L):
    x = lonlat_points(150)
    err = (ref.spherical_harmonics(x, L) - scipy_real_sh(x, L)).abs().max().item()
    assert err < 1e-10, err


def test_float32_l40_within_1e4():
    x = lonlat_points(300)
    y = ref.spherical_harmonics(x.float(), 40)
    assert y.dtype == torch.float32
    err = (y.double() - scipy_real_sh(x, 40)).abs().max().item()
    assert err < 1e-4, err


def test_orthonormal_on_the_sphere():
    # Gauss-Legendre in sin(lat) x uniform lon integrates products of degree < 2L exactly.
    L = 8
    nodes, weights = torch.from_numpy(__import__("numpy").polynomial.legendre.leggauss(L + 1)[0]), \
        torch.from_numpy(__import__("numpy").polynomial.legendre.leggauss(L + 1)[1])
    nlon = 2 * L + 1
    lon = torch.arange(nlon, dtype=torch.float64) * 360.0 / nlon
    lat = torch.rad2deg(torch.asin(nodes))
    pts = torch.cartesian_prod(lon, lat)
    w = (weights.repeat(nlon) * 2 * math.pi / nlon)[:, None]
    Y = ref.spherical_harmonics(pts, L)
    gram = (Y * w).t() @ Y
    assert torch.allclose(gram, torch.eye(L * L, dtype=torch.float64), atol=1e-12)


def test_longitude_is_periodic():
    x = lonlat_points(50)
    shifted = x.clone()
    shifted[:, 0] += 720.0
    assert torch.allclose(ref.spherical_harmonics(x, 12), ref.spherical_harmonics(shifted, 12), atol=1e-12)

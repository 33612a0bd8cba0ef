"""The original's "discretized" spherical harmonics (satclip.nn.discretized_harmonics): the 360 x 180
table and its two-corner lookup, against a re-derivation written here point by point from scipy's
spherical harmonics (nodes of a 360/359 and 180/179 degree lattice, indices taken as if one degree
apart, clamped, weights (1 - fx)(1 - fy) and fx(1 - fy)); poles, dateline, integer degrees;
float32; gradients; loading through a checkpoint."""

import math

import numpy as np
import pytest
import torch

from conftest import lonlat_points, scipy_real_sh
from satclip.nn.discretized_harmonics import DiscretizedSphericalHarmonics


def _analytic(lonlat: torch.Tensor, L: int) -> torch.Tensor:
    """scipy's orthonormal real SH in the released ("analytic") convention: (-1)^l, m = 0 times pi."""
    y = scipy_real_sh(lonlat, L)
    for l in range(L):
        y[:, l * l:(l + 1) * (l + 1)] *= (-1.0) ** l
        y[:, l * l + l] *= math.pi
    return y


def _expected(points: torch.Tensor, L: int) -> torch.Tensor:
    rows = []
    for lon, lat in points.tolist():
        px, py = lon + 180.0, lat + 90.0
        fx, fy = px - math.floor(px), py - math.floor(py)
        i0, j0 = min(max(math.floor(px), 0), 359), min(max(math.floor(py), 0), 179)
        i1, j1 = min(max(math.ceil(px), 0), 359), min(max(math.ceil(py), 0), 179)
        nodes = torch.tensor([[-180 + i * 360 / 359, -90 + j * 180 / 179] for i, j in ((i0, j0), (i1, j1))],
                             dtype=torch.float64)
        y = _analytic(nodes, L)
        rows.append((1 - fx) * (1 - fy) * y[0] + fx * (1 - fy) * y[1])
    return torch.stack(rows)


SPECIAL = torch.tensor([[180.0, 90.0], [-180.0, -90.0], [179.5, 89.5], [0.0, 0.0], [12.0, -33.0], [-0.25, 0.75],
                        [179.999, -89.999]], dtype=torch.float64)


@pytest.mark.parametrize("L", [1, 4, 7])
def test_float64_against_the_lookup_rederived(L):
    enc = DiscretizedSphericalHarmonics(L)
    x = torch.cat([lonlat_points(60), SPECIAL])
    got = enc(x)
    assert got.shape == (len(x), L * L) and got.dtype == torch.float64
    # the table is stored in float32, as the original stores it
    torch.testing.assert_close(got, _expected(x, L), rtol=2e-6, atol=2e-6)


def test_integer_degrees_give_the_node_and_latitude_fractions_shrink():
    enc = DiscretizedSphericalHarmonics(5)
    node = enc(torch.tensor([[10.0, 20.0]], dtype=torch.float64))
    torch.testing.assert_close(node, _expected(torch.tensor([[10.0, 20.0]]), 5), rtol=2e-6, atol=2e-6)
    # halfway between two integer latitudes the two corners weigh (1 - 0.5) in all: the original's quirk
    half = enc(torch.tensor([[10.0, 20.5]], dtype=torch.float64))
    torch.testing.assert_close(half, 0.5 * node, rtol=0, atol=1e-12)


def test_float32_and_gradients():
    enc = DiscretizedSphericalHarmonics(4)
    x = lonlat_points(30)
    got32 = enc(x.float())
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), enc(x), rtol=0, atol=5e-5)
    # away from integer degrees the lookup is linear in the fractional parts
    inner = torch.tensor([[10.3, 20.6], [-120.7, -45.2], [179.4, 88.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(enc, (inner,))


def test_table_layout_and_state_dict():
    enc = DiscretizedSphericalHarmonics(3)
    table = enc.table("cpu")
    assert table.shape == (360 * 180, 9) and table.dtype == torch.float32
    lon = torch.linspace(-180, 180, 360)
    lat = torch.linspace(-90, 90, 180)
    i, j = 200, 17  # row i * 180 + j holds node (lon_i, lat_j)
    want = _analytic(torch.tensor([[float(lon[i]), float(lat[j])]], dtype=torch.float64), 3)[0]
    torch.testing.assert_close(table[i * 180 + j].double(), want, rtol=1e-6, atol=1e-6)
    assert enc.state_dict() == {}  # the original keeps the table out of its state_dict too
    with pytest.raises(ValueError, match=r"shape \[N, 2\]"):
        enc(torch.zeros(2, 3))

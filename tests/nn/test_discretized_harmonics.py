"""The original's "discretized" spherical harmonics (satclip.nn.discretized_harmonics): the 360 x 180
table and its two-corner lookup, against a re-derivation written here point by point from scipy's
spherical harmonics (nodes of a 360/359 and 180/179 degree lattice, indices taken as if one degree
apart, clamped, weights (1 - fx)(1 - fy) and fx(1 - fy)); poles, dateline, integer degrees;
float32; gradients; loading through a checkpoint."""

import math

import numpy as np
import pytest
import torch

from conftest import EPS32, float32_tolerance, lonlat_points, scipy_real_sh
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


def _float32_table_tolerance(L):
    """The table's values come from the original's expanded polynomials evaluated in float32:
    each is within a few eps of the sum of the magnitudes of its terms (conftest's policy), bounded
    by the sum of the absolute coefficients of the expression (|cos|, |sin| <= 1)."""
    import re
    from satclip.nn.discretized_harmonics import original_expressions
    worst = max(sum(abs(float(c)) for c in re.findall(r"\d+\.\d+(?:e[-+]?\d+)?", e)) + 1
                for e in original_expressions(L))
    return float(float32_tolerance(worst, rel=4 * EPS32))


@pytest.mark.parametrize("L", [1, 4, 7])
def test_float64_against_the_lookup_rederived(L):
    enc = DiscretizedSphericalHarmonics(L)
    x = torch.cat([lonlat_points(60), SPECIAL])
    got = enc(x)
    assert got.shape == (len(x), L * L) and got.dtype == torch.float64
    # the table is computed and stored in float32, as the original does
    tol = _float32_table_tolerance(L)
    torch.testing.assert_close(got, _expected(x, L), rtol=0, atol=tol)


def test_integer_degrees_give_the_node_and_latitude_fractions_shrink():
    enc = DiscretizedSphericalHarmonics(5)
    node = enc(torch.tensor([[10.0, 20.0]], dtype=torch.float64))
    torch.testing.assert_close(node, _expected(torch.tensor([[10.0, 20.0]]), 5), rtol=0, atol=_float32_table_tolerance(5))
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
    torch.testing.assert_close(table[i * 180 + j].double(), want, rtol=0, atol=_float32_table_tolerance(3))
    assert enc.state_dict() == {}  # the original keeps the table out of its state_dict too
    with pytest.raises(ValueError, match=r"shape \[N, 2\]"):
        enc(torch.zeros(2, 3))


def _generator_as_the_original_writes_it(L):
    """The original generator's formula, spelled as its script spells it (Plm_bar first, then
    the sign, sqrt(2) and the trig factor), printed with evalf."""
    from sympy import Abs, Symbol, assoc_legendre, cos, factorial, pi, sin, sqrt
    theta, phi = Symbol("theta"), Symbol("phi")
    out = []
    for l in range(L):
        for m in range(-l, l + 1):
            if m < 0:
                plm_bar = sqrt(((2 * l + 1) / (4 * pi)) * (factorial(l - Abs(m)) / factorial(l + Abs(m)))) * \
                    assoc_legendre(l, Abs(m), cos(theta))
                y = (-1) ** m * sqrt(2) * plm_bar * sin(Abs(m) * phi)
            elif m == 0:
                y = sqrt((2 * l + 1) / 4 * pi) * assoc_legendre(l, m, cos(theta))
            else:
                plm_bar = sqrt(((2 * l + 1) / (4 * pi)) * (factorial(l - m) / factorial(l + m))) * \
                    assoc_legendre(l, m, cos(theta))
                y = (-1) ** m * sqrt(2) * plm_bar * cos(m * phi)
            out.append(str(y.evalf()))
    return out


@pytest.mark.parametrize("L", [10, 13])
def test_table_is_the_originals_float32_table_bit_for_bit(L):
    """The table as the original builds it: its generator's expressions evaluated on float32 angles
    of a float32 linspace meshgrid read in xy order, every step in float32 (an accurate float64 table
    rounded to float32 differs from it in most entries)."""
    from satclip.nn.discretized_harmonics import discretized_table, original_expressions
    exprs = _generator_as_the_original_writes_it(L)
    assert list(original_expressions(L)) == exprs
    lons, lats = torch.meshgrid(torch.linspace(-180, 180, 360), torch.linspace(-90, 90, 180))
    lons, lats = lons.T, lats.T
    phi, theta = torch.deg2rad(lons + 180), torch.deg2rad(lats + 90)
    env = {"cos": torch.cos, "sin": torch.sin, "theta": theta, "phi": phi}
    ys = torch.stack([eval(e, {"__builtins__": {}}, env) * torch.ones_like(phi) for e in exprs])  # noqa: S307
    want = ys.permute(0, 2, 1)                                           # [K, 360, 180], the original's Ys
    got = discretized_table(L)
    assert got.dtype == torch.float32
    assert torch.equal(got.T.reshape(L * L, 360, 180), want)
    accurate = _analytic(torch.stack([lons.T.reshape(-1), lats.T.reshape(-1)], 1).double(), L)
    assert (got.double() != accurate.float().double()).any()  # what the float64-then-rounded table would miss

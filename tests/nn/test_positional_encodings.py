"""The original's other positional encodings (satclip.nn.positional_encodings), float64, against
a re-derivation written here element by element from the formulas (loops over points,
frequencies and terms, not the module's vectorised layout), quirks included; float32; gradients;
torch.compile; refusals."""

import math

import pytest
import torch

from conftest import lonlat_points
from satclip.nn.positional_encodings import geometric_frequencies, positional_encoding


def _freqs(F, rmin, rmax):
    return [1.0 / (rmin * (rmax / rmin) ** (f / (F - 1))) for f in range(F)]


def _expected(name, lon, lat, F, rmin, rmax):
    """One point's encoding, value by value."""
    w = _freqs(F, rmin, rmax)
    rl, rt = math.radians(lon), math.radians(lat)
    if name == "direct":
        return [rl - math.pi, rt - math.pi]
    if name == "cartesian3d":
        return [math.cos(rt) * math.cos(rl), math.cos(rt) * math.sin(rl), math.sin(rt)]
    if name == "wrap":
        return [math.cos(rl), math.sin(rl), math.cos(rt), math.sin(rt)]
    if name == "grid":  # degrees taken as radians; per coordinate, per frequency: sin, cos
        return [fn(c * wf) for c in (lon, lat) for wf in w for fn in (math.sin, math.cos)]
    if name == "theory":  # projections on three unit vectors 120 degrees apart, each twice
        proj = [lon, -lon / 2 + math.sqrt(3) / 2 * lat, -lon / 2 - math.sqrt(3) / 2 * lat]
        angles = [p * wf for wf in w for p in proj for _ in range(2)]
        half = 3 * F  # sin/cos alternate within each half of the output
        return [math.sin(a) if (k % half) % 2 == 0 else math.cos(a) for k, a in enumerate(angles)]
    out = []
    for wf in w:  # the sphere2vec family: per frequency a list of terms, each value twice
        sa, ca, so, co = math.sin(lat * wf), math.cos(lat * wf), math.sin(lon * wf), math.cos(lon * wf)
        mixed = [ca * math.cos(lon), math.cos(lat) * co, ca * math.sin(lon), math.cos(lat) * so]
        terms = {"spherec": [sa, ca * co, ca * so],
                 "spherecplus": [sa, ca, so, co, ca * co, ca * so],
                 "spherem": [sa] + mixed,
                 "spheremplus": [sa, ca, so, co] + mixed}[name]
        out += [v for v in terms for _ in range(2)]
    return out


NAMES = ["direct", "cartesian3d", "wrap", "theory", "grid", "spherec", "spherecplus", "spherem", "spheremplus"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("F,rmin,rmax", [(4, 1.0, 260.0), (5, 0.5, 360.0)])
def test_float64_against_the_formula(name, F, rmin, rmax):
    enc = positional_encoding(name, frequency_num=F, min_radius=rmin, max_radius=rmax)
    x = lonlat_points(40)
    got = enc(x)
    want = torch.tensor([_expected(name, float(a), float(b), F, rmin, rmax) for a, b in x.tolist()],
                        dtype=torch.float64)
    assert got.shape == want.shape == (len(x), enc.embedding_dim)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got32 = enc(x.float())
    assert got32.dtype == torch.float32
    # float32 input: its rounding (up to 4e-6 degrees at 90) enters angles taken as radians
    torch.testing.assert_close(got32.double(), want, rtol=0, atol=2e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_and_compile(name):
    enc = positional_encoding(name, frequency_num=3, min_radius=1.0, max_radius=100.0)
    x = lonlat_points(6, dtype=torch.float64)[:6].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(enc, (x,))
    compiled = torch.compile(enc, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x.detach()), enc(x.detach()))


def test_frequencies_and_refusals():
    w = geometric_frequencies(3, 1.0, 100.0)
    torch.testing.assert_close(w, torch.tensor([1.0, 0.1, 0.01], dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown le_type 'hexagons'"):
        positional_encoding("hexagons")
    with pytest.raises(ValueError, match="min_radius and max_radius must be > 0"):
        positional_encoding("grid", min_radius=0.0)
    with pytest.raises(ValueError, match=r"min_radius \(10.0\) must not exceed max_radius \(1.0\)"):
        positional_encoding("theory", min_radius=10.0, max_radius=1.0)
    with pytest.raises(ValueError, match="frequency_num must be >= 2"):
        positional_encoding("spherec", frequency_num=1)
    with pytest.raises(ValueError, match=r"shape \[N, 2\]"):
        positional_encoding("wrap")(torch.zeros(3, 3))

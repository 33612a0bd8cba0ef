"""The encoder factorised over latitude rows (satclip.nn.iso_latitude) against the plain path:
the same numbers to float rounding at L = 10, 40 and 100 on grid rows (poles and the dateline
included), land-only rows, HEALPix rings and shuffled points; the "auto" rule; refusals."""

import numpy as np
import pytest
import torch

from satclip.nn import LocationEncoder
from satclip.nn import iso_latitude as I
from satclip.options import EncodeOptions


def _grid_rows(step, lats, dtype):
    lon = torch.arange(-180 + step / 2, 180, step, dtype=torch.float64)
    ll = torch.stack(torch.meshgrid(torch.tensor(lats, dtype=torch.float64), lon, indexing="ij"), -1).reshape(-1, 2)
    return ll[:, [1, 0]].to(dtype).contiguous()


def _both(enc, ll):
    with torch.no_grad():
        enc.factorise = "never"
        plain = enc(ll)
        enc.factorise = "always"
        fact = enc(ll)
    return plain, fact


# w0 = 30 multiplies the first layer's rounding: float32 agrees to a few 1e-6 at L = 10-40
@pytest.mark.parametrize("L,hidden,tol32", [(10, 128, 2e-5), (40, 128, 5e-5), (100, 64, 2e-4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_rows_match_the_plain_path(L, hidden, tol32, dtype):
    torch.manual_seed(L)
    enc = LocationEncoder(L, hidden, 2, 32).to(dtype).eval()
    ll = _grid_rows(2.5, [-88.75, -45.0, 0.0, 33.75, 88.75], dtype)
    ll = torch.cat([ll, torch.tensor([[180.0, 90.0], [-180.0, 90.0], [0.0, -90.0], [180.0, 0.0], [-180.0, 0.0]],
                                     dtype=dtype)])  # the poles and the dateline exactly
    plain, fact = _both(enc, ll)
    tol = tol32 if dtype == torch.float32 else 1e-11
    assert (plain - fact).abs().max().item() < tol


def test_shuffled_points_land_rows_and_healpix_rings():
    torch.manual_seed(0)
    enc = LocationEncoder(20, 64, 2, 16).double().eval()
    grid = _grid_rows(1.0, list(np.arange(-89.5, 90, 7.0)), torch.float64)
    g = torch.Generator().manual_seed(1)
    keep = torch.rand(len(grid), generator=g) < 0.3                  # land-only rows: partial rows
    sets = [grid[torch.randperm(len(grid), generator=g)], grid[keep]]
    healpy = pytest.importorskip("healpy")
    theta, phi = healpy.pix2ang(16, np.arange(healpy.nside2npix(16)))
    rings = torch.from_numpy(np.stack([np.rad2deg(phi) - 180, 90 - np.rad2deg(theta)], 1))
    sets.append(rings[torch.randperm(len(rings), generator=g)])
    for ll in sets:
        plain, fact = _both(enc, ll)
        assert (plain - fact).abs().max().item() < 1e-11


def test_chunks_of_whole_rows():
    torch.manual_seed(0)
    enc = LocationEncoder(8, 32, 2, 8).double().eval()
    ll = _grid_rows(5.0, list(np.arange(-87.5, 90, 5.0)), torch.float64)
    with torch.no_grad():
        whole = I.encoder_forward(enc, ll)
        small = I.encoder_forward(enc, ll, EncodeOptions(tile_points=100))  # less than a row: one row per step
        blocks = I.encoder_forward(enc, ll, EncodeOptions(tile_points=100, row_block_points=500))  # several op calls
        shuffled = ll[torch.randperm(len(ll))]
        back = I.encoder_forward(enc, shuffled, EncodeOptions(tile_points=100, row_block_points=500))
    assert (whole - small).abs().max().item() < 1e-13
    assert (whole - blocks).abs().max().item() < 1e-13
    assert (enc.eval()(shuffled) - back).abs().max().item() < 1e-12


def test_auto_rule_and_refusals(monkeypatch):
    calls = []
    real = I.encoder_forward
    monkeypatch.setattr(I, "encoder_forward", lambda enc, ll, *a: calls.append(len(ll)) or real(enc, ll, *a))
    enc = LocationEncoder(20, 32, 2, 8).eval()
    g = torch.Generator().manual_seed(0)
    scattered = torch.stack([torch.rand(8000, generator=g) * 360 - 180, torch.rand(8000, generator=g) * 180 - 90], 1)
    grid = _grid_rows(0.5, [10.25, 10.75, 11.25, 11.75, 12.25, 12.75], torch.float32)  # 4,320 points, 6 latitudes
    with torch.no_grad():
        enc(scattered)
        enc(grid)
        enc(grid[:100])                # too few points for the rule
        enc.precision = "tf32"
        enc(grid)                      # the reduced precisions keep the plain path
        LocationEncoder(10, 32, 2, 8).eval()(grid)  # L < 20: the first layer is too small a share
    assert calls == [len(grid)]
    with pytest.raises(ValueError, match="factorise must be one of"):
        enc.factorise = "yes"
    with torch.no_grad():
        enc.factorise, enc.precision = "always", "float32"
        assert enc(torch.zeros(0, 2)).shape == (0, 8)

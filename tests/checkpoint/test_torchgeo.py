"""torchgeo both ways: `satclip.load` takes torchgeo 0.10's `SatCLIP` module or its state dict and
reproduces its outputs (its latitude clamp at +-89.95 degrees matched by default, the original's
values at the poles without it), and `satclip.to_torchgeo` returns torchgeo's module with our
weights. torchgeo's module file is imported by path from its released wheel (as
benchmarks/vs_torchgeo.py does: torchgeo itself needs Python >= 3.12); its datasets reading our
outputs are tested in tests/embedding/test_torchgeo_datasets.py."""

import sys

import pytest
import torch

import satclip
from conftest import torchgeo_satclip
from satclip.checkpoint import TORCHGEO_LATITUDE_LIMIT


@pytest.fixture(scope="module")
def tg():
    return torchgeo_satclip()


def _points():
    g = torch.Generator().manual_seed(0)
    lon = torch.rand(400, generator=g, dtype=torch.float64) * 360 - 180
    lat = torch.rad2deg(torch.asin(torch.rand(400, generator=g, dtype=torch.float64) * 2 - 1))
    extra = torch.tensor([[0.0, 90.0], [180.0, -90.0], [-180.0, 0.0], [179.999, 89.99], [12.0, -89.97]],
                         dtype=torch.float64)
    return torch.cat([torch.stack([lon, lat], 1), extra])


# torchgeo keeps its recurrence's coefficients in float32 (its buffers take the default dtype),
# so even in float64 its features carry float32 rounding: a few 1e-7 relative, amplified by the
# first layer's w0 = 30. The bound is 100x float32's epsilon on O(1) outputs.
ATOL = 100 * torch.finfo(torch.float32).eps


@pytest.mark.parametrize("L", [10, 40])
def test_load_reproduces_torchgeo(tg, L):
    torch.manual_seed(L)
    peer = tg.SatCLIP(legendre_polys=L, capacity=64, embed_dim=16, num_hidden_layers=2).double().eval()
    x = _points()
    with torch.no_grad():
        want = peer(x)
        for source in (peer, peer.state_dict(), {f"model.location.{k}": v for k, v in peer.state_dict().items()}):
            enc = satclip.load(source)
            assert enc.options.latitude_limit == TORCHGEO_LATITUDE_LIMIT
            assert (enc(x) - want).abs().max() < ATOL
        unclamped = satclip.from_torchgeo(peer, match_clamp=False)(x)
    near_pole = x[:, 1].abs() > TORCHGEO_LATITUDE_LIMIT
    assert (unclamped[~near_pole] - want[~near_pole]).abs().max() < ATOL  # the same model elsewhere
    assert (unclamped[near_pole] - want[near_pole]).abs().max() > 1e-4  # the clamp is where they differ


def test_to_torchgeo(tg, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchgeo.models", tg)  # what `from torchgeo.models import SatCLIP` finds
    torch.manual_seed(1)
    ours = satclip.LocationEncoder(10, 64, 2, 16).double().eval()
    theirs = satclip.to_torchgeo(ours)
    assert isinstance(theirs, tg.SatCLIP) and not theirs.training
    x = _points()
    inside = x[:, 1].abs() <= TORCHGEO_LATITUDE_LIMIT
    with torch.no_grad():
        assert (theirs(x)[inside] - ours(x)[inside]).abs().max() < ATOL
    with pytest.raises(ValueError, match="'analytic' harmonics"):
        satclip.to_torchgeo(satclip.LocationEncoder(4, 8, 1, 4, harmonics="closed-form"))


def test_to_torchgeo_without_torchgeo(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchgeo", None)
    monkeypatch.setitem(sys.modules, "torchgeo.models", None)
    with pytest.raises(ImportError, match=r"^torchgeo is not installed \(pip install torchgeo; it needs Python >= "
                                          r"3\.12\)$"):
        satclip.to_torchgeo(satclip.LocationEncoder(4, 8, 1, 4))


def test_not_a_satclip_state_dict():
    with pytest.raises(ValueError, match="not a torchgeo SatCLIP location encoder"):
        satclip.load({"encoder.weight": torch.zeros(2, 2)})

"""Checkpoints written by this package load into a model built independently in this test from
the original SatCLIP code's public structure (not from satclip's modules): a location encoder of
spherical harmonics (scipy, with the "analytic" convention written out) and a SIREN of plain
parameters (``layers.{i}.weight|bias``, ``last_layer.*``), registered twice as ``location.nnet``
and ``nnet``; a timm ResNet18 with 13 input channels as ``visual``; ``logit_scale``. Strict key
matching, then the same outputs."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import lonlat_points, scipy_real_sh
import satclip

timm = pytest.importorskip("timm")
L_ = pytest.importorskip("lightning")


class _SirenLayer(nn.Module):
    def __init__(self, d_in, d_out, w0, sine=True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.w0, self.sine = w0, sine

    def forward(self, x):
        z = x @ self.weight.t() + self.bias
        return torch.sin(self.w0 * z) if self.sine else z


class _Siren(nn.Module):
    def __init__(self, d_in, hidden, d_out, n_layers):
        super().__init__()
        self.layers = nn.ModuleList(_SirenLayer(d_in if i == 0 else hidden, hidden, 30.0 if i == 0 else 1.0)
                                    for i in range(n_layers))
        self.last_layer = _SirenLayer(hidden, d_out, 1.0, sine=False)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.last_layer(x)


def _analytic_sh(lonlat, L):
    """SatCLIP's "analytic" SH: (-1)^l times the orthonormal real SH, and pi on m = 0."""
    y = scipy_real_sh(lonlat, L)
    f = np.ones(L * L)
    for l in range(L):
        f[l * l:(l + 1) ** 2] = (-1.0) ** l
        f[l * l + l] *= math.pi
    return y * torch.from_numpy(f)


class _Location(nn.Module):
    def __init__(self, L, hidden, d_out, n_layers):
        super().__init__()
        self.L = L
        self.nnet = _Siren(L * L, hidden, d_out, n_layers)

    def forward(self, lonlat):
        return self.nnet(_analytic_sh(lonlat, self.L).to(self.nnet.layers[0].weight.dtype))


class _OriginalSatCLIP(nn.Module):
    def __init__(self, hp):
        super().__init__()
        self.visual = timm.create_model("resnet18", pretrained=False, in_chans=hp["in_channels"],
                                        num_classes=hp["embed_dim"])
        self.location = _Location(hp["legendre_polys"], hp["capacity"], hp["embed_dim"], hp["num_hidden_layers"])
        self.nnet = self.location.nnet
        self.logit_scale = nn.Parameter(torch.ones([]))


def test_training_checkpoint_loads_strictly_into_the_original_structure(tmp_path):
    from satclip.training.lightning import SatCLIPLightningModule

    torch.manual_seed(0)
    module = SatCLIPLightningModule(embed_dim=16, vision_layers="resnet18", legendre_polys=6, capacity=32,
                                    location_dtype="float64")
    trainer = L_.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    ckpt = torch.load(tmp_path / "m.ckpt", weights_only=False)
    hp = ckpt["hyper_parameters"]
    assert hp["vision_layers"] == "moco_resnet18" and hp["le_type"] == "sphericalharmonics" and hp["pe_type"] == "siren"

    orig = _OriginalSatCLIP(hp).double().eval()
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items()}
    assert all(k.startswith("model.") for k in ckpt["state_dict"])
    orig.load_state_dict(state, strict=True)

    x = lonlat_points(60)
    with torch.no_grad():
        want = orig.location(x)
        assert torch.allclose(satclip.load(tmp_path / "m.ckpt")(x), want, atol=1e-9)  # float64, as the original
        img = torch.randn(2, 13, 32, 32)
        module.eval()
        assert torch.allclose(module.model.encode_image(img).double(), orig.visual.float()(img).double(), atol=1e-5)
    assert float(orig.logit_scale) == pytest.approx(math.log(1 / 0.07))


def test_export_loads_strictly_into_the_original_location_encoder(tmp_path):
    from safetensors.torch import load_file

    torch.manual_seed(1)
    enc = satclip.LocationEncoder(8, 24, 3, 12).double().eval()
    path = satclip.save(enc, tmp_path / "e.safetensors")
    orig = _Location(8, 24, 12, 3).double()
    orig.load_state_dict(load_file(str(path)), strict=True)
    x = lonlat_points(80)
    with torch.no_grad():
        assert torch.allclose(enc(x), orig(x), atol=1e-9)

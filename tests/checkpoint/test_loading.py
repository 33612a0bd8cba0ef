"""satclip.load / satclip.save: original Lightning checkpoints (exact key layout), the
project's export, and every refusal case."""

import math

import numpy as np
import pytest
import torch

from conftest import lonlat_points, original_hparams, scipy_real_sh
import satclip

L, HIDDEN, OUT = 10, 32, 16


def _hparams(**over):
    return original_hparams(**{"legendre_polys": L, "capacity": HIDDEN, "embed_dim": OUT, **over})


def _weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    u = lambda *s, b: (torch.rand(*s, generator=g, dtype=torch.float64) * 2 - 1) * b
    return {
        "nnet.layers.0.weight": u(HIDDEN, L * L, b=1 / (L * L)), "nnet.layers.0.bias": u(HIDDEN, b=1 / (L * L)),
        "nnet.layers.1.weight": u(HIDDEN, HIDDEN, b=math.sqrt(6 / HIDDEN)), "nnet.layers.1.bias": u(HIDDEN, b=0.3),
        "nnet.last_layer.weight": u(OUT, HIDDEN, b=math.sqrt(6 / HIDDEN)), "nnet.last_layer.bias": u(OUT, b=0.3),
    }


def _write_lightning_ckpt(path, weights, hp=None, extra_visual=True):
    state = {}
    for k, v in weights.items():
        state["model.location." + k] = v
        state["model." + k] = v  # the released files carry the location net twice
    if extra_visual:
        state["model.visual.conv1.weight"] = torch.randn(64, 13, 7, 7)
        state["model.visual.bn1.running_mean"] = torch.zeros(64)
        state["model.visual.fc.weight"] = torch.randn(OUT, 512)
    state["model.logit_scale"] = torch.tensor(math.log(1 / 0.07))
    ckpt = {"epoch": 3, "global_step": 1234, "pytorch-lightning_version": "2.0.0", "state_dict": state,
            "optimizer_states": [{"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(3)}},
                                  "param_groups": [{"lr": 1e-4, "weight_decay": 0.01, "params": [0]}]}],
            "lr_schedulers": [], "callbacks": {}, "hyper_parameters": hp if hp is not None else _hparams()}
    torch.save(ckpt, path)
    return path


def _hand_forward(weights, x):
    """numpy float64: SatCLIP 'analytic' SH from scipy, then the SIREN by hand."""
    f = scipy_real_sh(x, L).numpy()
    l = np.repeat(np.arange(L), 2 * np.arange(L) + 1)
    m = np.concatenate([np.arange(-k, k + 1) for k in range(L)])
    f = f * (-1.0) ** l * np.where(m == 0, np.pi, 1.0)
    W = {k: v.numpy() for k, v in weights.items()}
    h = np.sin(30.0 * (f @ W["nnet.layers.0.weight"].T + W["nnet.layers.0.bias"]))
    h = np.sin(1.0 * (h @ W["nnet.layers.1.weight"].T + W["nnet.layers.1.bias"]))
    return h @ W["nnet.last_layer.weight"].T + W["nnet.last_layer.bias"]


def test_load_original_full_checkpoint(tmp_path):
    w = _weights()
    path = _write_lightning_ckpt(tmp_path / "satclip-resnet18-l10.ckpt", w)
    enc = satclip.load(path)
    assert not enc.training and next(enc.parameters()).dtype == torch.float64
    assert enc.legendre_polys == L and enc.harmonics == "analytic"
    x = lonlat_points(100)
    with torch.no_grad():
        got = enc(x).numpy()
    assert np.abs(got - _hand_forward(w, x)).max() < 1e-12


def test_load_float32_on_request(tmp_path):
    w = _weights(1)
    enc = satclip.load(_write_lightning_ckpt(tmp_path / "a.ckpt", w), dtype=torch.float32)
    x = lonlat_points(50)
    with torch.no_grad():
        got = enc(x.float()).double().numpy()
    assert np.abs(got - _hand_forward(w, x)).max() < 1e-4


def test_load_location_only_checkpoint(tmp_path):
    w = _weights(2)
    torch.save({"state_dict": {"location." + k: v for k, v in w.items()}, "hyper_parameters": _hparams()},
               tmp_path / "loc.ckpt")
    enc = satclip.load(tmp_path / "loc.ckpt")
    x = lonlat_points(20)
    with torch.no_grad():
        assert np.abs(enc(x).numpy() - _hand_forward(w, x)).max() < 1e-12


def test_save_and_load_export_roundtrip(tmp_path):
    w = _weights(3)
    enc = satclip.load(_write_lightning_ckpt(tmp_path / "a.ckpt", w))
    out = satclip.save(enc, tmp_path / "enc.safetensors")
    assert out.stat().st_size < 200_000
    again = satclip.load(out)
    x = lonlat_points(30)
    with torch.no_grad():
        assert torch.equal(enc(x), again(x))
    assert again.config() == enc.config()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        satclip.save(enc, out)
    satclip.save(enc, out, overwrite=True)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("hp_over,match", [
    ({"legendre_polys": 40}, "legendre_polys=40 but the weights imply legendre_polys=10"),
    ({"capacity": 512}, "capacity=512"),
    ({"num_hidden_layers": 3}, "num_hidden_layers=3"),
    ({"embed_dim": 512}, "embed_dim=512"),
    ({"le_type": "sphericalgrid"}, "unknown le_type 'sphericalgrid'"),
    ({"pe_type": "transformer"}, "unknown pe_type 'transformer'"),
    ({"pe_type": "fcnet"}, "weights do not match"),  # SIREN tensors under an fcnet configuration
    ({"harmonics_calculation": "legendre"}, "unsupported harmonics_calculation"),
])
def test_inconsistent_or_unsupported_hparams(tmp_path, hp_over, match):
    path = _write_lightning_ckpt(tmp_path / "bad.ckpt", _weights(), hp=_hparams(**hp_over))
    with pytest.raises(ValueError, match=match):
        satclip.load(path)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(ValueError, match=r"not a SatCLIP checkpoint \(neither a torch checkpoint nor safetensors\)"):
        satclip.load(junk)
    truncated = tmp_path / "trunc.ckpt"
    full = _write_lightning_ckpt(tmp_path / "full.ckpt", _weights())
    truncated.write_bytes(full.read_bytes()[:2000])
    with pytest.raises(ValueError, match="a damaged torch checkpoint"):
        satclip.load(truncated)
    import argparse  # a pickled object of a class that safe loading refuses
    torch.save({"state_dict": {}, "obj": argparse.Namespace(a=1)}, tmp_path / "custom.ckpt")
    with pytest.raises(ValueError, match=r"safe loading refuses.*weights_only=False"):
        satclip.load(tmp_path / "custom.ckpt")
    torch.save({"weights": 1}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="no 'state_dict'"):
        satclip.load(tmp_path / "other.ckpt")
    torch.save({"state_dict": {"model.visual.x": torch.zeros(1)}}, tmp_path / "visual_only.ckpt")
    with pytest.raises(ValueError, match="no location-encoder weights"):
        satclip.load(tmp_path / "visual_only.ckpt")


def test_missing_file_and_repo_id_without_hub(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        satclip.load(tmp_path / "nope.ckpt")
    import builtins
    real_import = builtins.__import__

    def no_hub(name, *a, **k):
        if name == "huggingface_hub":
            raise ImportError("no hub")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(FileNotFoundError, match="huggingface_hub"):
        satclip.load("microsoft/SatCLIP-ViT16-L40")


def test_bad_dtype(tmp_path):
    path = _write_lightning_ckpt(tmp_path / "a.ckpt", _weights())
    with pytest.raises(TypeError, match="dtype"):
        satclip.load(path, dtype=torch.float16)

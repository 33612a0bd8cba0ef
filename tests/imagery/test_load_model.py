"""satclip.load_model: the whole model from an original-layout checkpoint, offline; timm
backbones equal to timm itself, CLIP-style encoders with the original's key layout, in_channels
other than 13 through training and loading, and the refusals."""

import math

import numpy as np
import pytest
import torch

import satclip
from conftest import original_hparams

timm = pytest.importorskip("timm")

OUT, HIDDEN, L = 16, 32, 4


def _hparams(**over):
    return original_hparams(**{"legendre_polys": L, "capacity": HIDDEN, "embed_dim": OUT, "image_resolution": 224,
                               "vision_width": 768, **over})


def _location_state(seed=0):
    enc = satclip.LocationEncoder(L, HIDDEN, 2, OUT)
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(v.shape, generator=g, dtype=torch.float64) * 0.2 - 0.1 for k, v in enc.state_dict().items()}


def _write(path, visual_state, hp, logit_scale=2.5):
    state = {"model.visual." + k: v for k, v in visual_state.items()}
    for k, v in _location_state().items():
        state["model.location." + k] = v
        state["model." + k] = v  # the original registers the location network twice
    state["model.logit_scale"] = torch.tensor(logit_scale)
    torch.save({"epoch": 1, "global_step": 10, "state_dict": state, "hyper_parameters": hp}, path)
    return path


@pytest.mark.parametrize("name,arch", [("moco_resnet18", "resnet18"), ("moco_vit16", "vit_small_patch16_224")])
def test_timm_backbone_equals_timm(tmp_path, name, arch):
    torch.manual_seed(0)
    ref = timm.create_model(arch, in_chans=13, num_classes=OUT).eval()  # what the original builds
    path = _write(tmp_path / f"{name}.ckpt", ref.state_dict(), _hparams(vision_layers=name))
    model = satclip.load_model(path)
    assert not model.training and math.isclose(float(model.logit_scale.detach()), 2.5)
    x = torch.rand(2, 13, 224, 224)
    with torch.no_grad():
        got, want = model.encode_image(x), ref(x)
    assert got.dtype == torch.float32 and got.shape == (2, OUT)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    ll = torch.tensor([[10.0, 50.0], [-179.9, -89.0]], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_location(ll), satclip.load(path)(ll))  # float64, as the original


def test_load_model_downloads_nothing(tmp_path, monkeypatch):
    """The MoCo weights are never fetched: the checkpoint's tensors are the backbone."""
    def no_download(*a, **k):
        raise AssertionError("tried to download")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    ref = timm.create_model("resnet18", in_chans=13, num_classes=OUT)
    satclip.load_model(_write(tmp_path / "m.ckpt", ref.state_dict(), _hparams()))


def _clip_visual_keys(model):
    return {k[len("visual."):]: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("visual.")}


def test_modified_resnet_has_the_original_layout_and_init():
    from satclip.model import SatCLIP
    torch.manual_seed(0)
    m = SatCLIP(embed_dim=OUT, vision_layers=(1, 2, 1, 1), in_channels=5, legendre_polys=L, capacity=HIDDEN, image_resolution=64, vision_width=16)
    keys = _clip_visual_keys(m)
    # names and shapes as CLIP's ModifiedResNet in the original (width 16: stem 8, features 512)
    assert keys["conv1.weight"] == (8, 5, 3, 3) and keys["conv3.weight"] == (16, 8, 3, 3)
    assert keys["layer1.0.downsample.0.weight"] == (64, 16, 1, 1) and "layer1.0.downsample.1.running_var" in keys
    assert keys["layer2.1.conv3.weight"] == (128, 32, 1, 1) and "layer2.1.downsample.0.weight" not in keys
    assert keys["attnpool.positional_embedding"] == (2 * 2 + 1, 512)
    assert keys["attnpool.c_proj.weight"] == (OUT, 512) and keys["attnpool.q_proj.bias"] == (512,)
    # the original's initialize_parameters: zero bn3 gains, projections normal(0, 512^-1/2)
    assert all(float(p.abs().max()) == 0 for n, p in m.visual.named_parameters() if n.endswith("bn3.weight")
               and n.startswith("layer"))
    assert abs(float(m.visual.attnpool.q_proj.weight.std()) - 512 ** -0.5) < 0.1 * 512 ** -0.5
    assert m.encode_image(torch.rand(2, 5, 64, 64)).shape == (2, OUT)
    with pytest.raises(ValueError, match="not at the model's resolution"):
        m.encode_image(torch.rand(1, 5, 96, 96))
    with pytest.raises(ValueError, match=r"\[B, 5, H, W\]"):
        m.encode_image(torch.rand(1, 13, 64, 64))


def test_attention_pool_against_float64_formula():
    from satclip.model.clip_visual import AttentionPool2d
    torch.manual_seed(1)
    pool = AttentionPool2d(3, 8, 2, 5).double()
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64)
    t = torch.cat([x.flatten(2).mean(2, keepdim=True), x.flatten(2)], 2).transpose(1, 2) + pool.positional_embedding
    q, k, v = pool.q_proj(t[:, :1]), pool.k_proj(t), pool.v_proj(t)
    heads = []
    for h in range(2):
        s = slice(4 * h, 4 * h + 4)
        w = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / 2.0, -1)  # sqrt(head dim 4)
        heads.append(w @ v[..., s])
    want = pool.c_proj(torch.cat(heads, -1)[:, 0])
    torch.testing.assert_close(pool(x), want, rtol=1e-12, atol=1e-12)


def test_vision_transformer_has_the_original_layout():
    from satclip.model import SatCLIP
    m = SatCLIP(embed_dim=OUT, vision_layers=2, in_channels=3, legendre_polys=L, capacity=HIDDEN, image_resolution=32, vision_width=128, vision_patch_size=8)
    keys = _clip_visual_keys(m)
    assert keys["conv1.weight"] == (128, 3, 8, 8) and keys["class_embedding"] == (128,)
    assert keys["positional_embedding"] == (4 * 4 + 1, 128) and keys["proj"] == (128, OUT)
    assert keys["transformer.resblocks.1.attn.in_proj_weight"] == (384, 128)
    assert keys["transformer.resblocks.0.mlp.c_fc.weight"] == (512, 128) and "ln_post.bias" in keys
    assert m.visual.transformer.resblocks[0].attn.num_heads == 2  # vision_width // 64
    assert m.encode_image(torch.rand(2, 3, 32, 32)).shape == (2, OUT)


@pytest.mark.parametrize("vision_layers", [(1, 1, 1, 1), 2])
def test_clip_encoders_round_trip_through_a_checkpoint(tmp_path, vision_layers):
    from satclip.model import SatCLIP
    torch.manual_seed(2)
    ref = SatCLIP(embed_dim=OUT, vision_layers=vision_layers, in_channels=3, legendre_polys=L, capacity=HIDDEN, image_resolution=32, vision_width=64,
                  vision_patch_size=8).eval()
    for p in ref.visual.parameters():  # leave the zero-gain init: every weight must matter
        p.data.uniform_(-0.2, 0.2)
    hp = _hparams(vision_layers=list(vision_layers) if isinstance(vision_layers, tuple) else vision_layers,
                  in_channels=3, image_resolution=32, vision_width=64, vision_patch_size=8)
    path = _write(tmp_path / "clip.ckpt", ref.visual.state_dict(), hp)
    model = satclip.load_model(path, dtype=torch.float32)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(x), ref.encode_image(x))
    assert next(model.location.parameters()).dtype == torch.float32


def test_refusals(tmp_path):
    ref = timm.create_model("resnet18", in_chans=13, num_classes=OUT)
    good = _write(tmp_path / "good.ckpt", ref.state_dict(), _hparams())
    export = satclip.save(satclip.load(good), tmp_path / "loc.safetensors")
    with pytest.raises(ValueError, match="location-only export"):
        satclip.load_model(export)
    ckpt = torch.load(good, weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("model.visual.")}
    torch.save(ckpt, tmp_path / "reduced.ckpt")
    with pytest.raises(ValueError, match="no image encoder"):
        satclip.load_model(tmp_path / "reduced.ckpt")
    with pytest.raises(ValueError, match="do not fit vision_layers='moco_resnet50'"):
        satclip.load_model(_write(tmp_path / "r50.ckpt", ref.state_dict(), _hparams(vision_layers="moco_resnet50")))
    with pytest.raises(ValueError, match="unknown vision_layers"):
        satclip.load_model(_write(tmp_path / "x.ckpt", ref.state_dict(), _hparams(vision_layers="swin")))
    with pytest.raises(FileNotFoundError):
        satclip.load_model(tmp_path / "missing.ckpt")
    with pytest.raises(TypeError, match="dtype"):
        satclip.load_model(good, dtype=torch.float16)


def test_rgb_model_trains_loads_and_embeds(tmp_path):
    """in_channels=3 (RGB imagery, microsoft/satclip#21): training feeds the red, green and blue
    slots of the 13-band layout; load_model rebuilds the 3-channel encoder from the checkpoint."""
    pytest.importorskip("lightning")
    from satclip.cli import main
    out = tmp_path / "rgb"
    assert main(["train", "--data", "bluemarble", "--bluemarble-size", "64", "--batch-size", "16",
                 "--accumulate-grad-batches", "1", "--max-steps", "2", "--vision-layers", "1,1,1,1",
                 "--vision-width", "16", "--in-channels", "3", "--legendre-polys", "4", "--capacity", "32",
                 "--embed-dim", "16", "--val-fraction", "0", "--out", str(out), "--quiet"]) == 0
    model = satclip.load_model(out / "checkpoints" / "last.ckpt")
    assert model.in_channels == 3 and type(model.visual).__name__ == "ModifiedResNet"
    hp = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["hyper_parameters"]
    assert hp["in_channels"] == 3 and tuple(hp["vision_layers"]) == (1, 1, 1, 1) and hp["image_resolution"] == 32
    from satclip.training.bluemarble import BlueMarbleDataset
    ds = BlueMarbleDataset(4, 32, seed=1)
    images = torch.stack([ds[i]["image"][[3, 2, 1]] for i in range(4)])
    with torch.no_grad():
        emb = model.encode_image(images)
    assert emb.shape == (4, 16) and torch.isfinite(emb).all()
    with pytest.raises(SystemExit, match="select 2 channels but in_channels is 3"):
        main(["train", "--in-channels", "3", "--bands", "3,2", "--out", str(tmp_path / "x"), "--quiet"])

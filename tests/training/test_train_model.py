"""The SatCLIP training model: module tree and key layout of the original, frozen backbone,
backbone weight loading, and checkpoints compatible both ways."""

import math

import pytest
import torch

import satclip

pytest.importorskip("timm")
pytest.importorskip("lightning")

from satclip.training.lightning import ORIGINAL_HPARAMS, RELEASED_EXTRA_KEYS, SatCLIPLightningModule  # noqa: E402
from satclip.model.satclip_model import SatCLIP, build_visual, load_visual_weights  # noqa: E402

SMALL = dict(embed_dim=16, legendre_polys=4, capacity=32)


def _lonlat(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.rand(n, generator=g) * 360 - 180, torch.rand(n, generator=g) * 180 - 90], 1)


def test_key_layout_matches_the_original():
    m = SatCLIP(vision_layers="resnet18", **SMALL)
    keys = set(m.state_dict())
    assert "logit_scale" in keys and "visual.conv1.weight" in keys and "visual.fc.weight" in keys
    for k in ("nnet.layers.0.weight", "nnet.layers.1.bias", "nnet.last_layer.weight"):
        assert "location." + k in keys and k in keys  # the SIREN twice, as in the released files
    assert m.nnet.layers[0].weight is m.location.nnet.layers[0].weight
    assert m.visual.conv1.weight.shape[1] == 13 and m.visual.fc.weight.shape == (16, 512)
    assert abs(float(m.logit_scale.detach()) - math.log(1 / 0.07)) < 1e-6


@pytest.mark.parametrize("name", ["resnet18", "vit_small_patch16_224"])
def test_image_and_location_shapes(name):
    m = SatCLIP(vision_layers=name, **SMALL).eval()
    size = 32
    img, loc = m(torch.rand(2, 13, size, size), _lonlat(2))
    assert img.shape == loc.shape == (2, 16) and img.dtype == loc.dtype == torch.float32


def test_frozen_backbone_trains_only_the_projection_and_caches_equal_features():
    m = SatCLIP(vision_layers="resnet18", freeze_backbone=True, **SMALL).train()
    trainable = {n for n, p in m.visual.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert not m.visual.bn1.training and m.location.training  # frozen BatchNorm statistics stay put
    x = torch.rand(3, 13, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m.encode_pooled(m.pooled_features(x)), m.encode_image(x), atol=1e-6)


def test_moco_backbone_needs_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ValueError, match="visual_weights=PATH"):
        SatCLIP(vision_layers="moco_resnet18", **SMALL)
    with pytest.raises(ValueError, match="unknown vision_layers"):
        SatCLIP(vision_layers="resnet1000", **SMALL)


def test_backbone_weights_load_and_misfits_are_named(tmp_path):
    donor = build_visual("resnet18", 99)  # another projection size: the head is not taken
    torch.save(donor.state_dict(), tmp_path / "w.pth")
    m = SatCLIP(vision_layers="moco_resnet18", visual_weights=tmp_path / "w.pth", **SMALL)
    assert torch.equal(m.visual.conv1.weight, donor.conv1.weight)
    assert m.freeze_backbone
    bad = donor.state_dict()
    bad["conv1.weight"] = bad["conv1.weight"][:, :3]
    torch.save({"state_dict": bad}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="wrong shape.*conv1.weight"):
        load_visual_weights(build_visual("resnet18", 16), tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable weight file"):
        load_visual_weights(build_visual("resnet18", 16), tmp_path / "junk.pth")


def _saved_checkpoint(tmp_path, **kw):
    import lightning as L
    module = SatCLIPLightningModule(vision_layers="resnet18", **SMALL, **kw)
    trainer = L.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.strategy.connect(module)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    return module, path


def test_checkpoint_has_the_original_hyper_parameters_and_loads_in_an_original_style_loader(tmp_path):
    module, path = _saved_checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=False)
    hp = ckpt["hyper_parameters"]
    assert set(hp) == set(ORIGINAL_HPARAMS) | set(RELEASED_EXTRA_KEYS)
    assert hp["vision_layers"] == "moco_resnet18"  # the original's name for this architecture
    assert ckpt["satclip"]["options"]["vision_layers"] == "resnet18"
    # what the original loader does: pop the three extra keys, construct, load strictly
    for k in RELEASED_EXTRA_KEYS:
        hp.pop(k)
    rebuilt = SatCLIPLightningModule(**hp, pretrained_required=False)
    rebuilt.load_state_dict(ckpt["state_dict"], strict=True)
    assert set(ckpt["state_dict"]) == set(module.state_dict())


def test_satclip_load_reads_the_training_checkpoint(tmp_path):
    module, path = _saved_checkpoint(tmp_path)
    enc = satclip.load(path, dtype=torch.float32)
    x = _lonlat(50).double()
    with torch.no_grad():
        want = module.model.location.eval()(x.float())
        assert torch.allclose(enc(x.float()), want, atol=1e-6)
    again = SatCLIPLightningModule.from_checkpoint(path)
    assert again.hparams.vision_layers == "resnet18"
    for (k, a), b in zip(module.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_location_dtype_float64_like_the_original(tmp_path):
    m = SatCLIP(vision_layers="resnet18", location_dtype=torch.float64, **SMALL)
    assert m.location.nnet.layers[0].weight.dtype == torch.float64
    # as the original: encode_location returns the float64 tower's output, forward casts it to float32
    assert m.encode_location(_lonlat(4)).dtype == torch.float64
    assert m(torch.rand(4, 13, 32, 32), _lonlat(4))[1].dtype == torch.float32


@pytest.mark.parametrize("kw,match", [({"le_type": "hexagons"}, "unknown le_type 'hexagons'"),
                                      ({"pe_type": "transformer"}, "unknown pe_type 'transformer'"),
                                      ({"le_type": "grid", "min_radius": 0.0}, "min_radius and max_radius must be > 0"),
                                      ({"harmonics_calculation": "legendre"}, "unknown harmonics_calculation"),
                                      ({"in_channels": 0}, "in_channels must be a positive int"),
                                      ({"location_dtype": "float16"}, "location_dtype")])
def test_refused_options(kw, match):
    with pytest.raises(ValueError, match=match):
        SatCLIPLightningModule(vision_layers="resnet18", **SMALL, **kw)


def test_other_encoders_keep_the_original_module_tree():
    m = SatCLIP(vision_layers="resnet18", le_type="spherecplus", pe_type="fcnet", frequency_num=3, **SMALL)
    keys = set(m.state_dict())
    assert "location.nnet.class_emb.weight" in keys and "nnet.class_emb.weight" in keys
    assert m.nnet is m.location.nnet and m.location.posenc.embedding_dim == 36
    assert m.encode_location(_lonlat(3)).shape == (3, 16)


def test_weight_decay_groups_follow_the_original():
    from satclip.training.lightning import parameter_groups
    m = SatCLIP(vision_layers="resnet18", **SMALL)
    no_decay, decay = parameter_groups(m, 0.01)
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01
    names = {id(p): n for n, p in m.named_parameters()}
    exempt = {names[id(p)] for p in no_decay["params"]}
    decayed = {names[id(p)] for p in decay["params"]}
    assert "logit_scale" in exempt and "visual.bn1.weight" in exempt and "location.nnet.layers.0.bias" in exempt
    assert "location.nnet.layers.0.weight" in decayed and "visual.conv1.weight" in decayed
    assert all(names[id(p)] in exempt or p.ndim >= 2 for p in m.parameters() if p.requires_grad)
    assert len(exempt) + len(decayed) == sum(1 for p in m.parameters() if p.requires_grad)

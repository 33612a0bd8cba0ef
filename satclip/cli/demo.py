"""``satclip demo``: trains a small model on Blue Marble patches (CPU, a few minutes), embeds a
global grid with it, draws the embedding map, and locates held-out patches with the bundled
full model."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HELP = "train a small model on Blue Marble patches, embed a grid, draw the map, locate patches"
DEMO_MARKER = "satclip-demo.json"


def _demo_out(out: Path) -> Path:
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            raise SystemExit(f"satclip demo: {out} exists and was not written by the demo; choose another --out")
        print(f"satclip demo: replacing the previous demo output in {out}", file=sys.stderr)
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text(json.dumps({"written_by": "satclip demo"}))
    return out


def run(args) -> int:
    """Trains a small model on Blue Marble patches (CPU, a few minutes), embeds a global grid
    with it and draws the embedding map."""
    import torch

    from ..embedding.preview import render_preview
    from ..embedding.runner import run_embedding
    from ..embedding.sources import GridSource
    from .train import config_class

    TrainConfig = config_class()
    out = _demo_out(Path(args.out))
    cfg = TrainConfig(out=str(out / "train"), data="bluemarble", vision_layers="resnet18",
                      legendre_polys=args.legendre_polys, bluemarble_size=args.patches, patch_px=32,
                      batch_size=args.batch_size, accumulate_grad_batches=1, max_steps=args.steps,
                      ckpt_every=max(1, args.steps // 2),
                      keep_checkpoints=1, val_fraction=0.1, seed=args.seed, log_every=max(1, min(10, args.steps // 10)))
    # Steps and results go to one stream, flushed, so that they read in the order they happen.
    say = lambda msg: print(f"satclip demo: {msg}", flush=True)  # noqa: E731
    say(f"1/4 training on {args.patches} Blue Marble patches (32 px, ResNet18 + L={args.legendre_polys} "
        f"SH/SIREN location encoder), {args.steps} steps of {args.batch_size}")
    t0 = time.perf_counter()
    from ..training.run import train
    module = train(cfg, quiet=not sys.stderr.isatty())
    t_train = time.perf_counter() - t0
    import csv

    with open(next((out / "train" / "logs").glob("version_*/metrics.csv")), newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    vals = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    say(f"trained {args.steps} steps in {t_train:.0f} s: train loss {losses[0]:.3f} -> {losses[-1]:.3f}"
        + (f", validation loss {vals[0]:.3f} -> {vals[-1]:.3f}" if len(vals) > 1 else "")
        + f" (chance level {torch.log(torch.tensor(float(args.batch_size))):.3f})")
    enc = module.model.location.float().eval()
    say(f"2/4 embedding a {args.step} degree global grid")
    t0 = time.perf_counter()
    source = GridSource(args.step)
    grid = run_embedding(enc, source, out / "grid", fmt="npy", progress=False)
    t_embed = time.perf_counter() - t0
    from ..ops import backend_info
    say(f"embedded {len(source):,} grid cells in {t_embed:.2f} s -> {grid} "
        f"(backend: {backend_info()['ops']['location_encoder_forward']['cpu']})")
    say("3/4 drawing the map")
    png = render_preview(grid, out / "embedding-map.png",
                         title=f"SatCLIP demo (Blue Marble, {args.steps} steps): first 3 principal components")
    say(f"wrote {png}; checkpoint {out / 'train' / 'checkpoints' / 'last.ckpt'} (original SatCLIP layout), "
        f"location-only export {out / 'train' / 'location.safetensors'}")
    _localise(say, args.locate)
    return 0


def _localise(say, n: int) -> None:
    """Step 4: image -> location retrieval with the bundled full model (its image tower was
    trained with its location tower; the demo's short run is too weak to locate much)."""
    import numpy as np

    from ..imagery import Gallery, load_model, locate
    from ..imagery.locate import error_summary, great_circle_km
    from ..model.bands import model_bands
    from ..training.heldout import bluemarble_heldout

    say(f"4/4 locating {n} held-out Blue Marble patches with the bundled model (2-degree grid gallery)")
    t0 = time.perf_counter()
    model = load_model()
    images, true = bluemarble_heldout(n, bands=model_bands(model.in_channels))
    gallery = Gallery.from_grid(model, 2.0)
    res = locate(model, images, gallery, 1, true_lonlat=true)
    got = error_summary(res.distance_km[:, 0])
    rand = error_summary(great_circle_km(true, gallery.lonlat[np.random.default_rng(0).integers(0, len(gallery),
                                                                                                len(true))]))
    say(f"located {len(true)} patches in {time.perf_counter() - t0:.1f} s: median error {got['median_km']:,.0f} km, "
        f"{got['within_1000_km']:.0%} within 1,000 km (random guessing: {rand['median_km']:,.0f} km, "
        f"{rand['within_1000_km']:.0%}); `satclip locate` does this for GeoTIFF patches")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="satclip-demo", help="output directory (default satclip-demo)")
    p.add_argument("--steps", type=int, default=150, help="training steps (default 150)")
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--patches", type=int, default=4096, help="Blue Marble patches (default 4096)")
    p.add_argument("--legendre-polys", type=int, default=10, help="SH degree count L (default 10)")
    p.add_argument("--step", type=float, default=1.0, help="grid step of the embedding map in degrees (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--locate", type=int, default=500, help="held-out patches located with the bundled model in "
                                                           "step 4 (default 500)")

"""``satclip train`` and ``satclip demo`` (argparse built from :class:`TrainConfig`, so every
option is documented once)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
import typing
from pathlib import Path

DEMO_MARKER = "satclip-demo.json"


def _config_class():
    try:
        from .training.run import TrainConfig
    except ImportError as exc:
        raise SystemExit(f"satclip train: {exc}") from None
    return TrainConfig


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .training.run import TrainConfig

    p.add_argument("--config", help="JSON or YAML file of options (flags given here override it)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        base = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
        helptext = f"{f.metadata['help']} (default: {f.default})"
        if base[0] is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            p.add_argument(flag, type=base[0], default=None, help=helptext)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="delete the run in --out and start again")
    p.add_argument("--quiet", action="store_true", help="no progress bar or model summary")


def config_from_args(args):
    TrainConfig = _config_class()
    values = TrainConfig.from_file(args.config) if args.config else {}
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return TrainConfig(**values)


def cmd_train(args) -> int:
    try:
        cfg = config_from_args(args)
        from .training.run import _launched_worker, train
        t0 = time.perf_counter()
        train(cfg, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet)
    except (ValueError, FileExistsError, FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"satclip train: {exc}") from None
    if _launched_worker():
        return 0
    print(f"satclip train: done in {time.perf_counter() - t0:.1f} s; checkpoints in {cfg.out}/checkpoints, "
          f"location-only export {cfg.out}/location.safetensors")
    return 0


def _demo_out(out: Path) -> Path:
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            raise SystemExit(f"satclip demo: {out} exists and was not written by the demo; choose another --out")
        print(f"satclip demo: replacing the previous demo output in {out}", file=sys.stderr)
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text(json.dumps({"written_by": "satclip demo"}))
    return out


def cmd_demo(args) -> int:
    """Trains a small model on Blue Marble patches (CPU, a few minutes), embeds a global grid
    with it and draws the embedding map."""
    import torch

    from ._preview import render_preview
    from ._runner import run_embedding
    from ._sources import GridSource

    TrainConfig = _config_class()
    out = _demo_out(Path(args.out))
    cfg = TrainConfig(out=str(out / "train"), data="bluemarble", vision_layers="resnet18",
                      legendre_polys=args.legendre_polys, bluemarble_size=args.patches, patch_px=32,
                      batch_size=args.batch_size, max_steps=args.steps, ckpt_every=max(1, args.steps // 2),
                      keep_checkpoints=1, val_fraction=0.1, seed=args.seed, log_every=max(1, min(10, args.steps // 10)))
    print(f"satclip demo: 1/3 training on {args.patches} Blue Marble patches (32 px, ResNet18 + L={args.legendre_polys} "
          f"SH/SIREN location encoder), {args.steps} steps of {args.batch_size}", file=sys.stderr)
    t0 = time.perf_counter()
    from .training.run import train
    module = train(cfg, quiet=not sys.stderr.isatty())
    t_train = time.perf_counter() - t0
    enc = module.model.location.float().eval()
    print(f"satclip demo: 2/3 embedding a {args.step} degree global grid", file=sys.stderr)
    t0 = time.perf_counter()
    source = GridSource(args.step)
    grid = run_embedding(enc, source, out / "grid", fmt="npy", progress=False)
    t_embed = time.perf_counter() - t0
    png = render_preview(grid, out / "embedding-map.png",
                         title=f"SatCLIP demo (Blue Marble, {args.steps} steps): first 3 principal components")
    import csv

    import satclip
    with open(next((out / "train" / "logs").glob("version_*/metrics.csv")), newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    vals = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    print(f"trained {args.steps} steps in {t_train:.0f} s: train loss {losses[0]:.3f} -> {losses[-1]:.3f}"
          + (f", validation loss {vals[0]:.3f} -> {vals[-1]:.3f}" if len(vals) > 1 else "")
          + f" (chance level {torch.log(torch.tensor(float(args.batch_size))):.3f})")
    print(f"embedded {len(source):,} grid cells in {t_embed:.2f} s -> {grid} "
          f"(backend: {satclip.backend_info()['ops']['location_encoder_forward']['cpu']})")
    print(f"3/3 wrote {png}")
    print(f"checkpoint {out / 'train' / 'checkpoints' / 'last.ckpt'} (original SatCLIP layout), "
          f"location-only export {out / 'train' / 'location.safetensors'}")
    return 0


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="satclip-demo", help="output directory (default satclip-demo)")
    p.add_argument("--steps", type=int, default=150, help="training steps (default 150)")
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--patches", type=int, default=4096, help="Blue Marble patches (default 4096)")
    p.add_argument("--legendre-polys", type=int, default=10, help="SH degree count L (default 10)")
    p.add_argument("--step", type=float, default=1.0, help="grid step of the embedding map in degrees (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

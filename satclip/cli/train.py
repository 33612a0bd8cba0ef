"""``satclip train``: SatCLIP contrastive training (argparse built from :class:`TrainConfig`, so
every option is documented once)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import typing


def config_class():
    try:
        from ..training.run import TrainConfig
    except ImportError as exc:
        raise SystemExit(f"satclip train: {exc}") from None
    return TrainConfig


HELP = "SatCLIP contrastive training (Lightning; S2-100K or the Blue Marble demo)"
DESCRIPTION = ("Train or resume a SatCLIP model. Options come from --config (JSON/YAML) and flags; defaults "
               "follow the original recipe (AdamW with its weight-decay groups, lr 1e-4, weight decay 0.01, 512 x 16 "
               "accumulation = 8,192 samples per step); --recipe original also takes its 500 epochs, val_loss "
               "checkpointing and float64 location encoder. Checkpoints have the original SatCLIP layout.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..training.run import TrainConfig

    p.add_argument("--config", help="JSON or YAML file of options (flags given here override it)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        base = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
        helptext = f.metadata["help"]
        if "(default" not in helptext:  # some say in their own words what the default means
            helptext += f" (default: {f.default})"
        if base[0] is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            p.add_argument(flag, type=base[0], default=None, help=helptext)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="delete the run in --out and start again")
    p.add_argument("--quiet", action="store_true", help="no progress bar or model summary")


def config_from_args(args):
    TrainConfig = config_class()
    values = TrainConfig.from_file(args.config) if args.config else {}
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return TrainConfig.for_recipe(values.pop("recipe", "fast"), **values)


def run(args) -> int:
    try:
        cfg = config_from_args(args)
        from ..training.run import _launched_worker, train
        t0 = time.perf_counter()
        train(cfg, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet)
    except (ValueError, FileExistsError, FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"satclip train: {exc}") from None
    if _launched_worker():
        return 0
    print(f"satclip train: done in {time.perf_counter() - t0:.1f} s; checkpoints in {cfg.out}/checkpoints, "
          f"location-only export {cfg.out}/location.safetensors")
    return 0

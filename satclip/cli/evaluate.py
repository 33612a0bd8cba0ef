"""``satclip evaluate``: linear and MLP probes on offline tasks, with baselines."""

from __future__ import annotations

import argparse

HELP = "linear and MLP probes on offline tasks, with baselines"
DESCRIPTION = ("Frozen embeddings + probes on air temperature, land/sea, Koppen class, elevation and population, "
               "against raw lon/lat, raw SH features and a randomly initialised encoder.")


def add_arguments(pv: argparse.ArgumentParser) -> None:
    pv.add_argument("--checkpoint", help="encoder to evaluate (default: baselines only)")
    pv.add_argument("--tasks", help="comma-separated subset of air_temp,land_sea,koppen,elevation,population")
    pv.add_argument("--probes", help="comma-separated subset of linear,mlp (default both)")
    pv.add_argument("--splits", help="comma-separated subset of random,spatial (default both)")
    pv.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    pv.add_argument("--legendre-polys", type=int, default=10, help="L of the baselines without --checkpoint")
    pv.add_argument("--out", help="directory for evaluation.md/.json/.png")
    pv.add_argument("--quiet", action="store_true", help="no per-fit lines")


def run(args) -> int:
    from ..evaluation.features import feature_sets
    from ..evaluation.probes import PROBES, SPLITS
    from ..evaluation.report import markdown, write_report
    from ..evaluation.run import evaluate
    from ..evaluation.tasks import TASKS

    tasks = tuple(args.tasks.split(",")) if args.tasks else TASKS
    probes = tuple(args.probes.split(",")) if args.probes else PROBES
    splits = tuple(args.splits.split(",")) if args.splits else SPLITS
    for value, allowed, what in ((tasks, TASKS, "task"), (probes, PROBES, "probe"), (splits, SPLITS, "split")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise SystemExit(f"satclip evaluate: unknown {what} {bad}; expected among {list(allowed)}")
    if args.seeds < 1:
        raise SystemExit("satclip evaluate: --seeds must be >= 1")

    def progress(r):
        if not args.quiet:
            print(f"  {r['task']:<11} {r['split']:<8} seed {r['seed']} {r['probe']:<6} {r['features']:<32} "
                  f"{r['metric']} {r['score']:.3f}", flush=True)

    try:
        features = feature_sets(args.checkpoint, args.legendre_polys)
        result = evaluate(features, tasks=tasks, probes=probes, splits=splits, seeds=tuple(range(args.seeds)),
                          progress=progress)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"satclip evaluate: {exc}") from None
    print(markdown(result))
    if args.out:
        written = write_report(result, features, args.out)
        if not any(p.suffix == ".png" for p in written):
            print("satclip evaluate: matplotlib missing, no plot written")
        print("wrote " + ", ".join(str(p) for p in written))
    return 0

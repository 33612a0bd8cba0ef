"""``satclip evaluate``: linear and MLP probes on offline tasks, with baselines."""

from __future__ import annotations

import argparse

HELP = "linear and MLP probes on offline tasks, with baselines"
QUICK_POINTS = 1000
# Seconds per fit of a whole `satclip evaluate --quick` run (all tasks, every feature set; task
# loading included), measured on this project's 2-core machines: see docs/guides/evaluation.md.
QUICK_SECONDS_PER_FIT = (0.25, 1.5)  # 0.28 s measured idle; a loaded machine takes several times that
DESCRIPTION = ("Frozen embeddings + probes on air temperature, precipitation, land/sea, Koppen class (main and full), "
               "elevation, population and country, or on your own table (--task), against raw lon/lat, raw SH "
               "features and a randomly initialised encoder; several --checkpoint side by side.")


def add_arguments(pv: argparse.ArgumentParser) -> None:
    pv.add_argument("--checkpoint", action="append", help="encoder to evaluate (default: the bundled default model); "
                    "repeat it to compare several side by side; the baselines are always included")
    pv.add_argument("--tasks", help="comma-separated subset of air_temp,land_sea,koppen,elevation,population,"
                                    "precipitation,country,koppen_full,housing_ames,housing_sacramento,unemployment,"
                                    "species (default: all, or none when --task is given)")
    pv.add_argument("--geoclip", action="store_true", help="add GeoCLIP's pretrained location encoder as a peer "
                                                            "baseline (needs the geoclip package; runs offline)")
    pv.add_argument("--encodings", help="comma-separated positional encodings of the original (wrap, theory, grid, "
                                        "spherec, spherecplus, spherem, spheremplus, direct, cartesian3d): each adds "
                                        "its raw features and a random-init encoder with a SIREN as baselines")
    pv.add_argument("--task", help="your own task: a CSV or Parquet table with lon, lat and --target")
    pv.add_argument("--target", help="--task: the column to predict")
    pv.add_argument("--kind", choices=["regression", "classification"], help="--task: what the target is")
    pv.add_argument("--lon-col", default="lon", help="--task: longitude column (default lon)")
    pv.add_argument("--lat-col", default="lat", help="--task: latitude column (default lat)")
    pv.add_argument("--probes", help="comma-separated subset of linear,mlp (default both)")
    pv.add_argument("--splits", help="comma-separated subset of random,spatial (default both)")
    pv.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; 1 with --quick)")
    pv.add_argument("--quick", action="store_true", help="a quick look (under 2 minutes on 2 cores): one "
                    f"seed, at most {QUICK_POINTS} points per task, no penalty search (ridge: leave-one-out alpha, "
                    "logistic: C = 1), MLP at most 100 epochs")
    pv.add_argument("--baselines-only", action="store_true", help="no encoder: only lon/lat, raw SH and a "
                                                                   "random-init encoder at --legendre-polys")
    pv.add_argument("--legendre-polys", type=int, default=10, help="L of the baselines with --baselines-only "
                                                                   "(otherwise the evaluated encoder's)")
    pv.add_argument("--reuse-baselines", metavar="EVALUATION_JSON",
                    help="take the baselines' rows (everything but the evaluated checkpoints) from an earlier "
                         "evaluation.json with the same settings instead of refitting them (same numbers: the "
                         "fits are deterministic per seed)")
    pv.add_argument("--out", help="directory for evaluation.md/.json/.png")
    pv.add_argument("--quiet", action="store_true", help="no per-fit lines")


def time_estimate(n_fits: int, quick: bool) -> str:
    """What the opening line says about the time to expect."""
    if not quick:
        return "a full evaluation takes hours on a 2-core machine (--quick: minutes)"
    lo, hi = (n_fits * t / 60 for t in QUICK_SECONDS_PER_FIT)
    return f"about {max(1, round(lo))}-{max(1, round(hi))} min on 2 cores"


def run(args) -> int:
    from ..evaluation.features import feature_sets
    from ..evaluation.probes import PROBES, SPLITS
    from ..evaluation.report import markdown, write_report
    from ..evaluation.run import evaluate
    from ..evaluation.tasks import TASKS

    tasks = tuple(args.tasks.split(",")) if args.tasks else (() if args.task else TASKS)
    probes = tuple(args.probes.split(",")) if args.probes else PROBES
    splits = tuple(args.splits.split(",")) if args.splits else SPLITS
    for value, allowed, what in ((tasks, TASKS, "task"), (probes, PROBES, "probe"), (splits, SPLITS, "split")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise SystemExit(f"satclip evaluate: unknown {what} {bad}; expected among {list(allowed)}")
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if seeds < 1:
        raise SystemExit("satclip evaluate: --seeds must be >= 1")

    def progress(r):
        if not args.quiet:
            print(f"  {r['task']:<11} {r['split']:<8} seed {r['seed']} {r['probe']:<6} {r['features']:<32} "
                  f"{r['metric']} {r['score']:.3f}", flush=True)

    try:
        if args.baselines_only and args.checkpoint:
            raise ValueError("--baselines-only and --checkpoint exclude each other")
        if args.task:
            if not (args.target and args.kind):
                raise ValueError("--task needs --target COLUMN and --kind regression|classification")
            from ..evaluation.tasks import user_task
            tasks = tasks + (user_task(args.task, args.target, args.kind, args.lon_col, args.lat_col),)
        elif args.target or args.kind:
            raise ValueError("--target and --kind describe a --task table; give --task too")
        features = feature_sets(args.checkpoint, args.legendre_polys, default_model=not args.baselines_only,
                                geoclip=args.geoclip,
                                encodings=tuple(args.encodings.split(",")) if args.encodings else ())
        n_fits = len(features) * len(tasks) * len(probes) * len(splits) * seeds
        print(f"satclip evaluate: {len(features)} feature sets x {len(tasks)} tasks x {len(probes)} probes x "
              f"{len(splits)} splits x {seeds} seed{'s' * (seeds != 1)} = {n_fits:,} fits"
              + (f" on at most {QUICK_POINTS:,} points per task" if args.quick else "")
              + f"; {time_estimate(n_fits, args.quick)}", flush=True)
        reuse = None
        if args.reuse_baselines:
            import json
            from pathlib import Path
            reuse = json.loads(Path(args.reuse_baselines).read_text())
        result = evaluate(features, tasks=tasks, probes=probes, splits=splits, seeds=tuple(range(seeds)),
                          progress=progress, max_points=QUICK_POINTS if args.quick else None,
                          quick=args.quick, reuse=reuse)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"satclip evaluate: {exc}") from None
    print(markdown(result))
    if args.out:
        written = write_report(result, features, args.out)
        if not any(p.suffix == ".png" for p in written):
            print("satclip evaluate: matplotlib missing, no plot written")
        print("wrote " + ", ".join(str(p) for p in written))
    return 0

"""``satclip evaluate``: frozen features + probes on the offline tasks, with baselines.

Feature sets compared in one table: raw (lon, lat); the raw spherical-harmonic features at the
same L; a randomly initialised encoder (seed 0) of the same shape; and the user's checkpoint,
when given. For each task, split (random, spatial checkerboard), probe (linear, MLP) and seed
the probe is fitted on the training part and scored on the test part; the table gives
mean +- std over seeds next to the best constant predictor.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from . import functional as F
from ._probes import PROBES, SPLITS, constant_baseline, fit_predict, score, split
from ._tasks import TASKS, load_task
from .nn import LocationEncoder


def feature_sets(checkpoint=None, legendre_polys: int = 10) -> dict:
    """name -> function(lonlat [n, 2] float64 numpy) -> features [n, d] numpy."""
    enc = None
    if checkpoint is not None:
        from ._checkpoint import load
        enc = load(checkpoint, dtype=torch.float64)
        legendre_polys = enc.legendre_polys
    L = legendre_polys
    torch.manual_seed(0)
    rand = (LocationEncoder(L, enc.nnet.dim_hidden, enc.nnet.num_layers, enc.nnet.dim_out) if enc is not None
            else LocationEncoder(L, 512, 2, 256)).double().eval()

    def run(model):
        def f(ll):
            with torch.no_grad():
                return model(torch.from_numpy(ll)).numpy()
        return f

    sets = {"lon/lat": lambda ll: ll.copy(),
            f"SH L={L}": lambda ll: F.spherical_harmonics(torch.from_numpy(ll), L).numpy(),
            f"random-init encoder L={L}": run(rand)}
    if enc is not None:
        sets[f"checkpoint {Path(str(checkpoint)).name}"] = run(enc)
    return sets


def evaluate(features: dict, tasks=TASKS, probes=PROBES, splits=SPLITS, seeds=(0, 1, 2), progress=None) -> dict:
    rows = []
    t0 = time.perf_counter()
    loaded = {}
    for name in tasks:
        loaded[name] = load_task(name)
    for name, task in loaded.items():
        feats = {fname: fn(task.lonlat) for fname, fn in features.items()}
        for sp in splits:
            for seed in seeds:
                test = split(task.lonlat, sp, seed)
                train = ~test
                const = score(task.kind, task.y[test], constant_baseline(task.kind, task.y[train], int(test.sum())))
                for probe in probes:
                    for fname, x in feats.items():
                        pred, _ = fit_predict(probe, task.kind, x[train], task.y[train], x[test], seed)
                        rows.append({"task": name, "split": sp, "seed": seed, "probe": probe, "features": fname,
                                     "metric": task.metric, "score": score(task.kind, task.y[test], pred),
                                     "constant": const, "n_train": int(train.sum()), "n_test": int(test.sum())})
                        if progress:
                            progress(rows[-1])
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 1),
            "tasks": {n: {"n": len(t), "kind": t.kind, "metric": t.metric, "description": t.description}
                      for n, t in loaded.items()},
            "features": list(features), "probes": list(probes), "splits": list(splits), "seeds": list(seeds)}


def summarise(result: dict) -> list[dict]:
    """Mean and std over seeds for every (task, split, probe, features)."""
    groups: dict = {}
    for r in result["rows"]:
        key = (r["task"], r["split"], r["probe"], r["features"])
        groups.setdefault(key, []).append(r)
    out = []
    for (task, sp, probe, fname), rs in groups.items():
        s = np.array([r["score"] for r in rs])
        c = np.array([r["constant"] for r in rs])
        out.append({"task": task, "split": sp, "probe": probe, "features": fname, "metric": rs[0]["metric"],
                    "mean": float(s.mean()), "std": float(s.std()), "constant": float(c.mean())})
    return out


def markdown(result: dict) -> str:
    summ = summarise(result)
    feats = result["features"]
    lines = ["| task (metric) | split | probe | constant | " + " | ".join(feats) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in feats) + " |"]
    keys = sorted({(s["task"], s["split"], s["probe"]) for s in summ},
                  key=lambda k: (TASKS.index(k[0]) if k[0] in TASKS else 99, k[1], k[2]))
    for task, sp, probe in keys:
        cells = {s["features"]: s for s in summ if (s["task"], s["split"], s["probe"]) == (task, sp, probe)}
        first = next(iter(cells.values()))
        vals = " | ".join(f"{cells[f]['mean']:.3f} +- {cells[f]['std']:.3f}" if f in cells else "" for f in feats)
        lines.append(f"| {task} ({first['metric']}) | {sp} | {probe} | {first['constant']:.3f} | {vals} |")
    tasks = result["tasks"]
    lines += ["", "Tasks: " + "; ".join(f"{n}: {t['description']}, n = {t['n']}" for n, t in tasks.items()) + ".",
              f"Seeds {result['seeds']}; {result['seconds']} s."]
    return "\n".join(lines) + "\n"


def plot(result: dict, features: dict, png: Path) -> list[Path]:
    """Bar chart of every task (random split), and for land_sea a map of the MLP probe's
    prediction on a 2-degree grid from the last feature set."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summ = [s for s in summarise(result) if s["split"] == "random"]
    tasks = list(result["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 4), squeeze=False)
    feats = result["features"]
    for ax, task in zip(axes[0], tasks):
        for pi, probe in enumerate(result["probes"]):
            vals = [next((s["mean"] for s in summ if (s["task"], s["probe"], s["features"]) == (task, probe, f)), 0)
                    for f in feats]
            errs = [next((s["std"] for s in summ if (s["task"], s["probe"], s["features"]) == (task, probe, f)), 0)
                    for f in feats]
            xs = np.arange(len(feats)) + pi * 0.4
            ax.bar(xs, vals, width=0.4, yerr=errs, label=probe)
        ax.set_xticks(np.arange(len(feats)) + 0.2)
        ax.set_xticklabels(feats, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{task} ({result['tasks'][task]['metric']})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    written = [png]
    if "land_sea" in tasks:
        task = load_task("land_sea")
        fname = feats[-1]
        fn = features[fname]
        lon = np.arange(-179, 180, 2.0)
        lat = np.arange(-89, 90, 2.0)
        grid = np.stack(np.meshgrid(lon, lat), -1).reshape(-1, 2)
        pred, _ = fit_predict("mlp", task.kind, fn(task.lonlat), task.y, fn(grid), 0)
        from matplotlib.colors import ListedColormap
        fig, ax = plt.subplots(figsize=(10, 5))
        ax.imshow(pred.reshape(len(lat), len(lon)), origin="lower", extent=(-180, 180, -90, 90),
                  cmap=ListedColormap(["#3b6ea8", "#8cb369"]), vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"land/sea predicted by an MLP probe on {fname}")
        mpng = png.with_name(png.stem + "_land_sea_map.png")
        fig.savefig(mpng, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(mpng)
    return written


def run_cli(checkpoint, tasks, out, seeds, legendre_polys, probes=PROBES, splits=SPLITS, quiet=False) -> str:
    features = feature_sets(checkpoint, legendre_polys)

    def progress(r):
        if not quiet:
            print(f"  {r['task']:<11} {r['split']:<8} seed {r['seed']} {r['probe']:<6} {r['features']:<32} "
                  f"{r['metric']} {r['score']:.3f}", flush=True)

    result = evaluate(features, tasks=tasks, probes=probes, splits=splits, seeds=tuple(range(seeds)), progress=progress)
    table = markdown(result)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps({**result, "summary": summarise(result)}, indent=1))
        (out / "evaluation.md").write_text(table)
        try:
            plot(result, features, out / "evaluation.png")
        except ImportError:
            print("satclip evaluate: matplotlib missing, no plot written")
    return table

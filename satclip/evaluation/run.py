"""The evaluation loop: for each task, split (random, spatial checkerboard), seed, probe
(linear, MLP) and feature set, the probe is fitted on the training part and scored on the test
part, next to the best constant predictor; :func:`summarise` gives mean and std over seeds."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .probes import PROBES, SPLITS, constant_baseline, fit_predict, score, split
from .tasks import TASKS, Task, load_task


def evaluate(features: dict, tasks=TASKS, probes=PROBES, splits=SPLITS, seeds=(0, 1, 2), progress=None,
             max_points: int | None = None, quick: bool = False) -> dict:
    """``max_points``: evaluate each task on at most that many of its points (a fixed random
    subset, the same on every run); ``quick``: the probes' cheaper settings (see
    :mod:`.probes`). ``satclip evaluate --quick`` uses both."""
    rows = []
    t0 = time.perf_counter()
    loaded = {}
    for item in tasks:  # a built-in task's name or a Task (a user task)
        task = item if isinstance(item, Task) else load_task(item)
        name = task.name
        if max_points is not None and len(task) > max_points:
            keep = np.sort(np.random.default_rng(0).choice(len(task), size=max_points, replace=False))
            task = dataclasses.replace(task, lonlat=task.lonlat[keep], y=task.y[keep])  # the caller's Task untouched
        loaded[name] = task
    for name, task in loaded.items():
        feats = {fname: fn(task.lonlat) for fname, fn in features.items()}
        for sp in splits:
            for seed in seeds:
                test = split(task.lonlat, sp, seed)
                train = ~test
                const = score(task.kind, task.y[test], constant_baseline(task.kind, task.y[train], int(test.sum())))
                for probe in probes:
                    for fname, x in feats.items():
                        pred, _ = fit_predict(probe, task.kind, x[train], task.y[train], x[test], seed, quick)
                        rows.append({"task": name, "split": sp, "seed": seed, "probe": probe, "features": fname,
                                     "metric": task.metric, "score": score(task.kind, task.y[test], pred),
                                     "constant": const, "n_train": int(train.sum()), "n_test": int(test.sum())})
                        if progress:
                            progress(rows[-1])
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 1),
            "_tasks": loaded,  # the Task objects, for the report's maps (not written to JSON)
            "tasks": {n: {"n": len(t), "kind": t.kind, "metric": t.metric, "description": t.description}
                      for n, t in loaded.items()},
            "features": list(features), "probes": list(probes), "splits": list(splits), "seeds": list(seeds),
            "quick": quick, "max_points": max_points}


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

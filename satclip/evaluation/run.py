"""The evaluation loop: for each task, split (random, spatial checkerboard), seed, probe
(linear, MLP) and feature set, the probe is fitted on the training part and scored on the test
part, next to the best constant predictor; :func:`summarise` gives mean and std over seeds."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .probes import PROBES, SPLITS, constant_baseline, fit_predict, score, split
from .tasks import TASKS, Task, load_task


EVALUATED = ("checkpoint ", "bundled default model")  # feature names of evaluated encoders (never reused)


def reusable_rows(previous: dict, tasks: dict, quick: bool, max_points) -> dict:
    """The rows of an earlier ``evaluation.json`` that this run may take instead of refitting:
    baselines only (not the evaluated encoders, whose weights may have changed), and only when
    the settings and every task's size and description are the same (the fits are deterministic
    per seed, so a refit would give the same numbers)."""
    if bool(previous.get("quick")) != bool(quick) or previous.get("max_points") != max_points:
        raise ValueError("the reused evaluation was made with other --quick / point settings")
    same = {n for n, t in tasks.items() if previous.get("tasks", {}).get(n, {}).get("n") == len(t)
            and previous["tasks"][n].get("description") == t.description}
    return {(r["task"], r["split"], r["seed"], r["probe"], r["features"]): r for r in previous.get("rows", [])
            if r["task"] in same and not r["features"].startswith(EVALUATED)}


def evaluate(features: dict, tasks=TASKS, probes=PROBES, splits=SPLITS, seeds=(0, 1, 2), progress=None,
             max_points: int | None = None, quick: bool = False, reuse: dict | None = None) -> dict:
    """``max_points``: evaluate each task on at most that many of its points (a fixed random
    subset, the same on every run); ``quick``: the probes' cheaper settings (see
    :mod:`.probes`). ``satclip evaluate --quick`` uses both. ``reuse``: an earlier result
    (``evaluation.json``) whose baseline rows are taken as they are (:func:`reusable_rows`)."""
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
    old = reusable_rows(reuse, loaded, quick, max_points) if reuse else {}
    n_reused = 0
    for name, task in loaded.items():
        feats = {}
        for fname, fn in features.items():
            if not all((name, sp, seed, probe, fname) in old for sp in splits for seed in seeds for probe in probes):
                feats[fname] = fn(task.lonlat)
        for sp in splits:
            for seed in seeds:
                test = split(task.lonlat, sp, seed)
                train = ~test
                const = score(task.kind, task.y[test], constant_baseline(task.kind, task.y[train], int(test.sum())))
                for probe in probes:
                    for fname in features:
                        if fname not in feats:
                            rows.append(dict(old[(name, sp, seed, probe, fname)], reused=True))
                            n_reused += 1
                            continue
                        x = feats[fname]
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
            "quick": quick, "max_points": max_points, "reused_rows": n_reused}


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

"""The evaluation report: a markdown table of mean +- std per task, split, probe and feature
set (:func:`markdown`), bar charts, the land/sea prediction map and, per task, a map of the
probe's errors on the test points (:func:`plot`, :func:`error_maps`, matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .probes import fit_predict
from .run import EVALUATED, summarise
from .tasks import TASKS, load_task


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
        one_seed = len(result["seeds"]) == 1  # no spread to show
        vals = " | ".join((f"{cells[f]['mean']:.3f}" if one_seed else f"{cells[f]['mean']:.3f} +- {cells[f]['std']:.3f}")
                          if f in cells else "" for f in feats)
        lines.append(f"| {task} ({first['metric']}) | {sp} | {probe} | {first['constant']:.3f} | {vals} |")
    tasks = result["tasks"]
    lines += ["", "Tasks: " + "; ".join(f"{n}: {t['description']}, n = {t['n']}" for n, t in tasks.items()) + ".",
              f"Seeds {result['seeds']}; {result['seconds']} s."]
    if result.get("reused_rows"):
        lines.append(f"{result['reused_rows']} baseline fits taken from an earlier run with the same settings "
                     "(--reuse-baselines).")
    if result.get("quick"):
        lines.append(f"Quick run (--quick): at most {result.get('max_points')} points per task, penalties not "
                     "searched (ridge: leave-one-out alpha, logistic: C = 1), MLP at most 100 epochs; "
                     "a first look, not the numbers to report.")
    return "\n".join(lines) + "\n"


def mapped_features(names) -> str:
    """The feature set the maps show: the (first) evaluated encoder, else the last baseline."""
    return next((f for f in names if f.startswith(EVALUATED)), list(names)[-1])


def plot(result: dict, features: dict, png: Path) -> list[Path]:
    """Bar chart of every task (random split), for land_sea a map of the MLP probe's prediction
    on a 2-degree grid, and the error maps (:func:`error_maps`), from :func:`mapped_features`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summ = [s for s in summarise(result) if s["split"] == "random"]
    tasks = list(result["tasks"])
    cols = min(4, len(tasks))
    rows_ = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(4 * cols, 4 * rows_), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    feats = result["features"]
    for ax, task in zip(axes.flat, tasks):
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
        fname = mapped_features(feats)
        fn = features[fname]
        lon = np.arange(-179, 180, 2.0)
        lat = np.arange(-89, 90, 2.0)
        grid = np.stack(np.meshgrid(lon, lat), -1).reshape(-1, 2)
        pred, _ = fit_predict("mlp", task.kind, fn(task.lonlat), task.y, fn(grid), 0,
                              result.get("quick", False))
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        from ..plotting import draw_coastlines, world_axes
        colours = ["#3b6ea8", "#8cb369"]
        fig, ax = plt.subplots(figsize=(10, 5))
        ax.imshow(pred.reshape(len(lat), len(lon)), origin="lower", extent=(-180, 180, -90, 90),
                  cmap=ListedColormap(colours), vmin=0, vmax=1, interpolation="nearest")
        draw_coastlines(ax)
        world_axes(ax, f"land/sea predicted by an MLP probe on {fname} (lines: true coastlines)")
        ax.legend(handles=[Patch(color=c, label=f"predicted {k}") for c, k in zip(colours, task.classes)],
                  loc="lower left", fontsize=8)
        mpng = png.with_name(png.stem + "_land_sea_map.png")
        fig.savefig(mpng, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(mpng)
    written += error_maps(result, features, png.with_name(png.stem + "_errors.png"))
    return written


def error_maps(result: dict, features: dict, png: Path) -> list[Path]:
    """One panel per task: the test points of the first random split (seed 0), coloured by the
    MLP probe's residual (regression: prediction - truth, symmetric colour scale at the 95th
    percentile) or by right / wrong (classification), for :func:`mapped_features` (the evaluated
    encoder when there is one); each panel framed to its task's points, coastlines drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import draw_coastlines
    from .probes import split

    tasks = result.get("_tasks") or {n: load_task(n) for n in result["tasks"]}
    fname = mapped_features(result["features"])
    fn = features[fname]
    cols = min(4, len(tasks))
    rows_ = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(5 * cols, 3.6 * rows_), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, (name, task) in zip(axes.flat, tasks.items()):
        test = split(task.lonlat, "random", 0)
        x = fn(task.lonlat)
        pred, _ = fit_predict("mlp", task.kind, x[~test], task.y[~test], x[test], 0, result.get("quick", False))
        ll = task.lonlat[test]
        if task.kind == "regression":
            err = pred - task.y[test]
            lim = float(np.percentile(np.abs(err), 95)) or 1.0
            sc = ax.scatter(ll[:, 0], ll[:, 1], c=err, cmap="RdBu_r", vmin=-lim, vmax=lim, s=6)
            fig.colorbar(sc, ax=ax, shrink=0.8, label="prediction - truth")
        else:
            right = pred == task.y[test]
            ax.scatter(ll[~right, 0], ll[~right, 1], c="#d62728", s=6, label=f"wrong ({(~right).mean():.0%})")
            ax.scatter(ll[right, 0], ll[right, 1], c="#2ca02c", s=4, alpha=0.5, label="right")
            ax.legend(fontsize=7, loc="lower left")
        x0, y0 = task.lonlat.min(0)
        x1, y1 = task.lonlat.max(0)
        pad = max(0.02, 0.05 * max(x1 - x0, y1 - y0))
        if max(x1 - x0, y1 - y0) > 5:  # coastlines where they can be seen at this scale
            draw_coastlines(ax, linewidth=0.3)
        ax.set_xlim(max(-180, x0 - pad), min(180, x1 + pad))
        ax.set_ylim(max(-90, y0 - pad), min(90, y1 + pad))
        ax.set_title(f"{name}: MLP probe on {fname}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return [png]


def write_report(result: dict, features: dict, out) -> list[Path]:
    """Writes ``evaluation.json`` (rows + summary), ``evaluation.md`` and the charts to ``out``;
    returns the files written (no charts without matplotlib)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    (out / "evaluation.json").write_text(json.dumps({**public, "summary": summarise(result)}, indent=1))
    (out / "evaluation.md").write_text(markdown(result))
    written = [out / "evaluation.json", out / "evaluation.md"]
    try:
        written += plot(result, features, out / "evaluation.png")
    except ImportError:
        pass
    return written

"""The evaluation report: a markdown table of mean +- std per task, split, probe and feature
set (:func:`markdown`), bar charts and the land/sea prediction map (:func:`plot`, matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .probes import fit_predict
from .run import summarise
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
    return written


def write_report(result: dict, features: dict, out) -> list[Path]:
    """Writes ``evaluation.json`` (rows + summary), ``evaluation.md`` and the charts to ``out``;
    returns the files written (no charts without matplotlib)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps({**result, "summary": summarise(result)}, indent=1))
    (out / "evaluation.md").write_text(markdown(result))
    written = [out / "evaluation.json", out / "evaluation.md"]
    try:
        written += plot(result, features, out / "evaluation.png")
    except ImportError:
        pass
    return written

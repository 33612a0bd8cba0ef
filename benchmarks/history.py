"""Benchmark history: every full run stored as one JSON entry, the latest compared with the one
before it on the same kind of machine, and the tracked ratios plotted over time.

    python benchmarks/history.py record RESULTS.json [MORE.json ...] [--kind cpu|gpu] [--dir DIR]
    python benchmarks/history.py compare [--dir DIR] [--threshold 0.15]
    python benchmarks/history.py plot [--dir DIR] [--png benchmarks/results/ratio-history.png]

An entry (``DIR/<date>-<commit>-<kind>.json``) holds the commit, the date, the machine (CPU
model and logical cores, GPU name), torch and satclip versions, each benchmark's median seconds
and points/s, and the ratios measured inside that run (report.py: this package against the
pure-PyTorch fallback, the original implementation re-created, the bare GEMMs / the encoder
alone). Absolute times on these shared machines move by about 20% from run to run, so only the
ratios are judged: ``compare`` flags a ratio that dropped by more than ``--threshold`` (15%)
against the previous entry of the same machine kind and exits 1 if any did; absolute numbers are
shown, not judged. Ratios against the pure-PyTorch fallback get ``--fallback-threshold`` (35%):
the fallback (many small ops, allocation-bound) is the noisiest path here, and two runs of the
same code moved such ratios by up to 29% (2026-11-29, SH forward L = 10 float64), while the
ratios against the bare GEMMs and the original moved by at most 5%.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from report import group_rates, ratios

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / "results" / "history"
DEFAULT_PNG = HERE / "results" / "ratio-history.png"


def _versions() -> dict:
    out = {}
    for mod in ("torch", "satclip"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def entry_from(results: dict, kind: str) -> dict:
    """A history entry from a pytest-benchmark JSON document."""
    mi = results.get("machine_info", {})
    gpus = {b.get("extra_info", {}).get("gpu") for b in results["benchmarks"]} - {None}
    commit = results.get("commit_info", {})
    rates = group_rates(results)
    medians = {(b["group"], b.get("extra_info", {}).get("impl", b["name"])): b["stats"]["median"]
               for b in results["benchmarks"]}  # shown beside the best-round rates
    return {
        "kind": kind,
        "date": results.get("datetime") or datetime.now(timezone.utc).isoformat(),
        "commit": commit.get("id"), "dirty": commit.get("dirty"),
        "machine": {"cpu": mi.get("cpu", {}).get("brand_raw"), "cores": mi.get("cpu", {}).get("count"),
                    "gpu": sorted(gpus)[0] if gpus else None},
        "versions": _versions(),
        "benchmarks": [{"group": g, "impl": i, "points_per_s": pps, "median_s": medians.get((g, i))}
                       for g, row in sorted(rates.items()) for i, pps in sorted(row.items())],
        "ratios": [{"group": g, "impl": i, "against": a, "ratio": r}
                   for g, row in sorted(rates.items()) for i, a, r in ratios(row)],
    }


def record(results_paths, kind: str = "cpu", directory=DEFAULT_DIR) -> Path:
    """One entry from one run's pytest-benchmark JSON file(s) (the GPU check writes one per group)."""
    paths = [results_paths] if isinstance(results_paths, (str, Path)) else list(results_paths)
    docs = [json.loads(Path(p).read_text()) for p in paths]
    merged = dict(docs[0], benchmarks=[b for d in docs for b in d["benchmarks"]])
    entry = entry_from(merged, kind)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = entry["date"][:19].replace(":", "").replace("-", "")
    path = directory / f"{stamp}-{(entry['commit'] or 'nocommit')[:10]}-{kind}.json"
    path.write_text(json.dumps(entry, indent=1) + "\n")
    return path


def machine_key(entry: dict) -> tuple:
    m = entry["machine"]
    return entry["kind"], m.get("cpu"), m.get("cores"), m.get("gpu")


def load(directory=DEFAULT_DIR) -> list[dict]:
    """The entries, oldest first, their ratios derived again from the stored rates, so that every
    entry is judged by today's definition of the tracked ratios."""
    entries = [json.loads(p.read_text()) for p in sorted(Path(directory).glob("*.json"))]
    for e in entries:
        rows: dict = {}
        for b in e["benchmarks"]:
            rows.setdefault(b["group"], {})[b["impl"]] = b["points_per_s"]
        e["ratios"] = [{"group": g, "impl": i, "against": a, "ratio": r}
                       for g, row in sorted(rows.items()) for i, a, r in ratios(row)]
    return sorted(entries, key=lambda e: e["date"])


def compare(directory=DEFAULT_DIR, threshold: float = 0.15, fallback_threshold: float = 0.35) -> tuple[str, int]:
    """Markdown comparison of the latest entry with the previous one of the same machine kind;
    returns (text, number of flagged ratios)."""
    entries = load(directory)
    if not entries:
        return f"no history in {directory}\n", 0
    latest = entries[-1]
    previous = [e for e in entries[:-1] if machine_key(e) == machine_key(latest)]
    if not previous:
        return f"one run of this machine kind {machine_key(latest)} in {directory}: nothing to compare yet\n", 0
    prev = previous[-1]
    lines = [f"# Benchmarks: {_label(latest)} against {_label(prev)}", "",
             f"Machine: {latest['machine']['cpu']}, {latest['machine']['cores']} logical CPUs"
             + (f", {latest['machine']['gpu']}" if latest["machine"]["gpu"] else "")
             + f". Ratios are judged (flag: dropped by more than {threshold:.0%}, {fallback_threshold:.0%} against "
               "the fallback); points/s are shown only.", ""]
    old_rates = {(b["group"], b["impl"]): b["points_per_s"] for b in prev["benchmarks"]}
    old_ratios = {(r["group"], r["impl"], r["against"]): r["ratio"] for r in prev["ratios"]}
    flagged = 0
    groups: dict = {}
    for b in latest["benchmarks"]:
        groups.setdefault(b["group"], []).append(b)
    for group, rows in groups.items():
        lines += [f"## {group}", "", "| impl | points/s before | points/s now | ratio | before | now | change | |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        mine = [r for r in latest["ratios"] if r["group"] == group]
        for b in rows:
            before = old_rates.get((group, b["impl"]))
            rs = [r for r in mine if r["impl"] == b["impl"]] or [None]
            for r in rs:
                cells = [b["impl"], f"{before:,.0f}" if before else "-", f"{b['points_per_s']:,.0f}"]
                if r is None:
                    cells += ["", "", "", "", ""]
                else:
                    old = old_ratios.get((group, r["impl"], r["against"]))
                    change = (r["ratio"] / old - 1) if old else None
                    limit = fallback_threshold if r["against"] == "fallback" else threshold
                    bad = change is not None and change < -limit
                    flagged += bad
                    cells += [f"vs {r['against']}", f"{old:.2f}" if old else "-", f"{r['ratio']:.2f}",
                              f"{change:+.0%}" if change is not None else "new", "REGRESSION" if bad else ""]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"{flagged} ratio(s) dropped by more than their threshold.")
    return "\n".join(lines) + "\n", flagged


def _label(entry: dict) -> str:
    return f"{entry['date'][:16]} ({(entry['commit'] or '?')[:10]}{', dirty' if entry.get('dirty') else ''})"


def plot(directory=DEFAULT_DIR, png=DEFAULT_PNG) -> Path:
    """One line per tracked ratio (group / impl vs baseline) over the history, per machine kind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = load(directory)
    kinds = sorted({machine_key(e) for e in entries}, key=str)
    fig, axes = plt.subplots(len(kinds), 1, figsize=(11, 5 * max(1, len(kinds))), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        runs = [e for e in entries if machine_key(e) == kind]
        series: dict = {}
        for k, e in enumerate(runs):
            for r in e["ratios"]:
                series.setdefault(f"{r['group']}: {r['impl']} vs {r['against']}", []).append((k, r["ratio"]))
        for name, pts in sorted(series.items()):
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([_label(e) for e in runs], rotation=20, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("ratio (x)")
        ax.set_title(f"ratios measured inside each run: {kind[1]}, {kind[2]} CPUs" + (f", {kind[3]}" if kind[3] else ""))
        ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return png


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("results", nargs="+")
    r.add_argument("--kind", default="cpu", choices=["cpu", "gpu"])
    for sp in (r, sub.add_parser("compare"), sub.add_parser("plot")):
        sp.add_argument("--dir", default=str(DEFAULT_DIR))
    sub.choices["compare"].add_argument("--threshold", type=float, default=0.15)
    sub.choices["compare"].add_argument("--fallback-threshold", type=float, default=0.35)
    sub.choices["plot"].add_argument("--png", default=str(DEFAULT_PNG))
    args = p.parse_args(argv)
    if args.cmd == "record":
        print(record(args.results, args.kind, args.dir))
        return 0
    if args.cmd == "compare":
        text, flagged = compare(args.dir, args.threshold, args.fallback_threshold)
        sys.stdout.write(text)
        return 1 if flagged else 0
    print(plot(args.dir, args.png))
    return 0


if __name__ == "__main__":
    sys.exit(main())

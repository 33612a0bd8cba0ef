"""Turns a pytest-benchmark JSON file into a markdown table of points per second, with each
group's ratios against the pure-PyTorch fallback, the original implementation (re-created in
the benchmark, impl "original-*") and, for the encoder, the bare GEMMs.

Usage: python benchmarks/report.py benchmarks/results/cpu.json > benchmarks/results/cpu.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> str:
    data = json.load(open(path))
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        impl = info.get("impl", b["name"])
        groups[b["group"]][impl] = info["points"] / b["stats"]["median"]
    mi = data.get("machine_info", {})
    lines = [f"# Benchmarks: {path}", "",
             f"Machine: {mi.get('cpu', {}).get('brand_raw', '?')}, {mi.get('cpu', {}).get('count', '?')} logical CPUs; "
             f"python {mi.get('python_version', '?')}; run {data.get('datetime', '?')}.",
             "Points per second from the median of the rounds (higher is better).", "",
             "| group | impl | points/s | vs fallback | x original | vs ceiling (bare GEMMs / encoder alone) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for group in sorted(groups):
        row = groups[group]
        base = row.get("fallback")
        original = next((v for k, v in row.items() if k.startswith("original")), None)
        ceiling_name = "bare-gemms" if "bare-gemms" in row else "encoder-alone"
        ceiling = row.get(ceiling_name)
        for impl, pps in sorted(row.items(), key=lambda kv: -kv[1]):
            vs_fb = f"{pps / base:.2f}x" if base and impl != "fallback" else ""
            vs_c = f"{pps / ceiling:.2f}" if ceiling and impl != ceiling_name else ""
            vs_o = f"{pps / original:.2f}x" if original and not impl.startswith("original") else ""
            lines.append(f"| {group} | {impl} | {pps:,.0f} | {vs_fb} | {vs_o} | {vs_c} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(main(sys.argv[1]))

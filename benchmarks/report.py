"""Turns a pytest-benchmark JSON file into a markdown table of points per second, with each
group's ratios against the pure-PyTorch fallback, the original implementation (re-created in
the benchmark, impl "original-*"), torchgeo's SatCLIP (impl "torchgeo*", same weights and
precision) and, for the encoder, the bare GEMMs (for bf16: the faster of torch's bf16 matmul and
float32 GEMMs on bf16 values) with the time per point spent outside them. The ratios are measured
inside one run, which is what history.py tracks over time.

Usage: python benchmarks/report.py benchmarks/results/cpu.json > benchmarks/results/cpu.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

CEILINGS = ("bare-gemms", "bare-gemms-whole", "encoder-alone", "plain-write")
PEERS = ("sphericart",)


def group_rates(data: dict) -> dict[str, dict[str, float]]:
    """group -> impl -> points per second, from the best (fastest) round: on these shared machines
    a round now and then runs several times slower than the others (another tenant, page
    faults), which moves medians by more than the changes they are meant to show."""
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        groups[b["group"]][info.get("impl", b["name"])] = info["points"] / b["stats"]["min"]
    return dict(groups)


def ratios(row: dict[str, float]) -> list[tuple[str, str, float]]:
    """``(impl, against, ratio)`` for every impl of one group that has a baseline in it: the
    fallback (or, for the loss, the materialised one; for grids, the unfactorised encoder), the original (impl "original-*"), a ceiling
    (bare GEMMs on the same chunks, bare whole-matrix GEMMs / the encoder alone)."""
    out = []
    original = next((k for k in row if k.startswith("original")), None)
    torchgeo = next((k for k in row if k.startswith("torchgeo")), None)
    ceilings = [k for k in CEILINGS if k in row]
    for impl, pps in sorted(row.items()):
        if impl in PEERS or impl.startswith("torchgeo"):  # another library's speed is context, not ours to track
            continue
        for base in ("fallback", "materialised", "unfactorised", original, torchgeo, *ceilings):
            if base and base in row and impl != base and not impl.startswith("original") and impl not in CEILINGS \
                    and impl not in ("materialised", "unfactorised"):
                out.append((impl, base, pps / row[base]))
    return out


def main(path: str) -> str:
    data = json.load(open(path))
    groups = group_rates(data)
    mi = data.get("machine_info", {})
    lines = [f"# Benchmarks: {path}", "",
             f"Machine: {mi.get('cpu', {}).get('brand_raw', '?')}, {mi.get('cpu', {}).get('count', '?')} logical CPUs; "
             f"python {mi.get('python_version', '?')}; run {data.get('datetime', '?')}.",
             "Points per second from the best of the rounds (higher is better).", "",
             "| group | impl | points/s | vs fallback (or materialised / unfactorised) | x original | x torchgeo | vs ceiling (bare GEMMs on the same chunks / whole-matrix; encoder alone) | us/point outside the GEMMs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for group in sorted(groups):
        row = groups[group]
        by_impl: dict = defaultdict(dict)
        for impl, base, r in ratios(row):
            kind = ("fallback" if base in ("fallback", "materialised", "unfactorised") else
                    "original" if base.startswith("original") else
                    "torchgeo" if base.startswith("torchgeo") else
                    "whole" if base == "bare-gemms-whole" else "ceiling")
            by_impl[impl][kind] = r
        for impl, pps in sorted(row.items(), key=lambda kv: -kv[1]):
            r = by_impl.get(impl, {})
            vs_fb = f"{r['fallback']:.2f}x" if "fallback" in r else ""
            vs_o = f"{r['original']:.2f}x" if "original" in r else ""
            vs_t = f"{r['torchgeo']:.2f}x" if "torchgeo" in r else ""
            vs_c = " / ".join([f"{r[k]:.2f}{label}" for k, label in (("ceiling", ""), ("whole", " whole")) if k in r])
            whole = row.get("bare-gemms-whole")
            outside = (f"{(1 / pps - 1 / whole) * 1e6:.2f}" if whole and group.startswith("encoder-fwd")
                       and impl not in CEILINGS and not impl.startswith(("original", "torchgeo")) else "")
            if outside.startswith("-"):  # own GEMMs faster than torch's bare ones: no share to attribute
                outside = "none (faster than the bare GEMMs)"
            lines.append(f"| {group} | {impl} | {pps:,.0f} | {vs_fb} | {vs_o} | {vs_t} | {vs_c} | {outside} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(main(sys.argv[1]))

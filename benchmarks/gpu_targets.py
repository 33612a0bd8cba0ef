"""Issue 4's GPU targets, checked against a GPU check's pytest-benchmark JSON files.

Usage: python benchmarks/gpu_targets.py OUT/gpu.json [OUT/gpu-autotune.json] > OUT/targets.md

Each row: what was measured (points/s from the median round, or a ratio of two of them), the
target, and whether it is met; a target whose benchmarks are missing says so instead of
passing. The HBM bandwidth of the SH target comes from the device name the benchmarks
recorded (vendor peak figures below); an unknown device leaves that row unjudged.
"""

from __future__ import annotations

import json
import sys

# Peak HBM bandwidth in bytes/s, by a substring of torch.cuda.get_device_name() (first match).
HBM_BYTES_PER_S = [
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),  # SXM5
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),  # 40 GB
]


def load(paths: list[str]) -> tuple[dict, str]:
    """{(group, impl): benchmark} over all files, and the device name they recorded."""
    rows, device = {}, "?"
    for path in paths:
        for b in json.load(open(path))["benchmarks"]:
            info = b.get("extra_info", {})
            rows[(b["group"], info.get("impl", b["name"]))] = b
            device = info.get("gpu", device)
    return rows, device


def rate(rows: dict, group: str, impl: str) -> float | None:
    b = rows.get((group, impl))
    return None if b is None else b["extra_info"]["points"] / b["stats"]["median"]


def best_rate(rows: dict, groups: list[str], impl: str) -> float | None:
    found = [r for g in groups if (r := rate(rows, g, impl)) is not None]
    return max(found) if found else None


def bandwidth(device: str) -> float | None:
    return next((bw for key, bw in HBM_BYTES_PER_S if key in device), None)


def targets(rows: dict, device: str) -> list[tuple[str, str, str, str]]:
    """(target, measured, goal, verdict) rows."""
    out = []

    def row(name, value, goal, ok, fmt):
        if value is None:
            out.append((name, "not measured", goal, "unknown"))
        else:
            out.append((name, fmt(value), goal, "met" if ok(value) else "missed"))

    l40 = [f"gpu-encoder-fwd-L40-N2^{k}-fp32" for k in (22, 24)]
    bf16 = best_rate(rows, l40, "fused-bf16")
    fp32 = best_rate(rows, l40, "fused")
    row("fused L=40 encoder forward, bf16 mode", bf16, ">= 2e8 points/s", lambda v: v >= 2e8, "{:.3g} points/s".format)
    row("fused L=40 encoder forward, float32 mode", fp32, ">= 2e7 points/s", lambda v: v >= 2e7,
        "{:.3g} points/s".format)
    g22 = "gpu-encoder-fwd-L40-N2^22-fp32"
    for mode, fused, compiled in (("float32", "fused", "compile-max-autotune"),
                                  ("bf16", "fused-bf16", "compile-max-autotune-bf16")):
        a, b = rate(rows, g22, fused), rate(rows, g22, compiled)
        row(f"fused vs torch.compile(max-autotune) of the fallback, {mode}, L=40, N=2^22",
            None if a is None or b is None else a / b, ">= 2x", lambda v: v >= 2, "{:.2f}x".format)
    sh = rows.get(("gpu-sh-fwd-L40-fp32", "compiled"))
    bw = bandwidth(device)
    if sh is None:
        out.append(("SH forward alone, L=40, output written", "not measured", ">= 70% of HBM bandwidth", "unknown"))
    else:
        achieved = sh["extra_info"]["bytes_written"] / sh["stats"]["median"]
        if bw is None:
            out.append(("SH forward alone, L=40, output written", f"{achieved / 1e9:.0f} GB/s",
                        ">= 70% of HBM bandwidth", f"unknown (no bandwidth on file for {device})"))
        else:
            share = achieved / bw
            out.append(("SH forward alone, L=40, output written",
                        f"{achieved / 1e9:.0f} GB/s = {share:.0%} of {bw / 1e12:.2f} TB/s",
                        ">= 70% of HBM bandwidth", "met" if share >= 0.7 else "missed"))
    for L in (10, 40):
        g = f"gpu-train-step-L{L}-B65536-fp32"
        a, b = rate(rows, g, "compiled"), rate(rows, g, "fallback")
        row(f"training step (encoder forward + backward), L={L}, batch 2^16, vs eager fallback",
            None if a is None or b is None else a / b, ">= 3x", lambda v: v >= 3, "{:.2f}x".format)
    return out


def main(paths: list[str]) -> str:
    rows, device = load(paths)
    lines = [f"# Issue 4 targets on {device}", "", f"From {', '.join(paths)}.", "",
             "| target | measured | goal | verdict |", "| --- | --- | --- | --- |"]
    lines += [f"| {t} | {m} | {g} | {v} |" for t, m, g, v in targets(rows, device)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(main([p for p in sys.argv[1:] if not p.startswith("-")]))

"""benchmarks/gpu_targets.py: issue 4's targets judged from pytest-benchmark JSON, on
synthetic files (no GPU needed): met, missed, and missing benchmarks left unjudged."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_targets", ROOT / "benchmarks" / "gpu_targets.py")
gpu_targets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_targets)


def bench(group, impl, points, seconds, **extra):
    return {"group": group, "name": f"bench[{impl}]", "stats": {"median": seconds},
            "extra_info": {"impl": impl, "points": points, "gpu": "NVIDIA H100 80GB HBM3", **extra}}


def write(path, benches):
    path.write_text(json.dumps({"benchmarks": benches}))
    return str(path)


def verdicts(md: str) -> dict:
    rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    return {r[0].lstrip("| "): (r[1], r[3].rstrip(" |")) for r in rows}


def test_met_missed_and_unknown(tmp_path):
    n = 1 << 22
    g22 = "gpu-encoder-fwd-L40-N2^22-fp32"
    main = write(tmp_path / "gpu.json", [
        bench(g22, "fused-bf16", n, n / 3e8),          # 3e8 points/s: met
        bench("gpu-encoder-fwd-L40-N2^24-fp32", "fused", 4 * n, 4 * n / 1e7),  # 1e7: missed
        bench(g22, "fused", n, n / 0.9e7),             # the better of the two sizes counts
        # 1600 floats per point written at 2.5e12 B/s = 75% of the H100 SXM's 3.35 TB/s: met
        bench("gpu-sh-fwd-L40-fp32", "compiled", 1 << 20, (1 << 20) * 6400 / 2.5e12, bytes_written=(1 << 20) * 6400),
        bench("gpu-train-step-L40-B65536-fp32", "compiled", 65536, 1.0),
        bench("gpu-train-step-L40-B65536-fp32", "fallback", 65536, 2.5),  # 2.5x: missed
    ])
    auto = write(tmp_path / "gpu-autotune.json", [bench(g22, "compile-max-autotune-bf16", n, n / 1e8)])
    v = verdicts(gpu_targets.main([main, auto]))
    assert v["fused L=40 encoder forward, bf16 mode"] == ("3e+08 points/s", "met")
    assert v["fused L=40 encoder forward, float32 mode"] == ("1e+07 points/s", "missed")
    assert v["fused vs torch.compile(max-autotune) of the fallback, bf16, L=40, N=2^22"] == ("3.00x", "met")
    assert v["fused vs torch.compile(max-autotune) of the fallback, float32, L=40, N=2^22"][1] == "unknown"
    assert v["SH forward alone, L=40, output written"] == ("2500 GB/s = 75% of 3.35 TB/s", "met")
    assert v["training step (encoder forward + backward), L=40, batch 2^16, vs eager fallback"] == ("2.50x", "missed")
    assert v["training step (encoder forward + backward), L=10, batch 2^16, vs eager fallback"][1] == "unknown"


def test_bandwidth_by_device_name():
    assert gpu_targets.bandwidth("NVIDIA H100 PCIe") == 2.0e12
    assert gpu_targets.bandwidth("NVIDIA H100 80GB HBM3") == 3.35e12
    assert gpu_targets.bandwidth("NVIDIA H200") == 4.8e12
    assert gpu_targets.bandwidth("Some other GPU") is None

"""A/B of the OpenMP wait policy for the streaming embedder (why `satclip` sets
OMP_WAIT_POLICY=PASSIVE for its own process, see satclip/__init__.py).

Each trial is a fresh process (libgomp reads the policy when torch loads) that times, median
of 3, the encoder alone and run_embedding to Parquet and to Zarr on a 0.25-degree grid
(1,036,800 points, L = 10, hidden 512, 256 out, float32, chunks of 16384). Trials alternate
ACTIVE (spinning, libgomp's default) and PASSIVE.

Usage: python benchmarks/embed_wait_policy.py [trials] > benchmarks/results/embed-wait-policy.md
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

TRIAL = r'''
import json, shutil, tempfile, time
import numpy as np, torch, satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding
torch.manual_seed(0)
enc = satclip.LocationEncoder(10, 512, 2, 256).float().eval()
grid = S.GridSource(0.25, chunk_points=16384)
pts = torch.from_numpy(np.concatenate([np.stack([c.lon, c.lat], 1) for c in grid.chunks()])).float()
tmp = tempfile.mkdtemp()
def alone():
    with torch.no_grad():
        for s in range(0, len(pts), 16384):
            enc(pts[s:s + 16384]).numpy()
def e2e(fmt):
    shutil.rmtree(tmp + "/o", ignore_errors=True)
    run_embedding(enc, grid, tmp + "/o", fmt=fmt, progress=False)
alone()
out = {}
for name, fn in [("alone", alone), ("parquet", lambda: e2e("parquet")), ("zarr", lambda: e2e("zarr"))]:
    ts = []
    for _ in range(3):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    out[name] = len(pts) / float(np.median(ts))
shutil.rmtree(tmp)
print(json.dumps(out))
'''


def main(trials: int = 3) -> None:
    rows = []
    for t in range(trials):
        for policy in ("ACTIVE", "PASSIVE"):
            env = dict(os.environ, OMP_WAIT_POLICY=policy)
            res = subprocess.run([sys.executable, "-c", TRIAL], env=env, capture_output=True, text=True, check=True)
            rows.append((t, policy, json.loads(res.stdout.strip().splitlines()[-1])))
    print("# OpenMP wait policy and the streaming embedder (points/s)\n")
    print(f"Command: `python benchmarks/embed_wait_policy.py {trials}`; machine: {os.cpu_count()} logical CPUs.\n")
    print("| trial | OMP_WAIT_POLICY | encoder alone | grid->parquet | grid->zarr | parquet / alone | zarr / alone |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t, policy, r in rows:
        print(f"| {t} | {policy} | {r['alone']:,.0f} | {r['parquet']:,.0f} | {r['zarr']:,.0f} | "
              f"{r['parquet'] / r['alone']:.2f} | {r['zarr'] / r['alone']:.2f} |")
    best_alone = max(r["alone"] for _, _, r in rows)
    for policy in ("ACTIVE", "PASSIVE"):
        sel = [r for _, p, r in rows if p == policy]
        mean = {k: sum(r[k] for r in sel) / len(sel) for k in ("alone", "parquet", "zarr")}
        print(f"\nmean {policy}: alone {mean['alone']:,.0f}, parquet {mean['parquet']:,.0f} "
              f"({mean['parquet'] / best_alone:.2f} of the fastest encoder-alone trial), zarr {mean['zarr']:,.0f} "
              f"({mean['zarr'] / best_alone:.2f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

"""The output path's ceiling: ``run_embedding`` with an encoder that costs nothing (a stand-in
that returns precomputed float32 outputs, converted on the CPU as a real encoder's are) on a
0.25-degree grid (1,036,800 points, 256-d), per format x dtype, beside a plain sequential write
+ fsync of the same number of bytes as that output holds, in the same run. The ratio
``stand-in / plain-write`` (report.py: "vs ceiling") is the share of the disk's speed the
writers keep: the targets are >= 0.8 (npy, Zarr, float32), >= 0.5 (npy, Zarr, float16 and int8),
>= 0.4 (Parquet float32), >= 0.3 (Parquet float16 and int8) on 2 cores.

Second part: the real encoder's share, ``satclip embed`` (the CLI, in this process) against the
encoder alone on the same points and chunks (float32 and bf16, L = 10 and 40; float32 output to
Parquet, the default, and to npy); target >= 0.9. On a CPU the writers' work comes out of the
cores the encoder uses, so the share is bounded by the encoder's CPU time over the sum of both:
Parquet's (Arrow's encoding of the list column) is the larger.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SMOKE, run
import satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding

pytest.importorskip("pyarrow")

DIM = 256
CHUNK = 16384
STEP = 10.0 if SMOKE else 0.25
FORMATS = ("parquet", "zarr", "npy")
DTYPES = ("float32", "float16", "int8")


class StandIn(torch.nn.Module):
    """An encoder that costs nothing: ``[n, 2] -> [n, 256]`` float32 rows of a precomputed block
    (standard normal / 4, the scale of real embeddings), a new view per call."""

    def __init__(self, dim: int = DIM, rows: int = CHUNK):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.block = torch.randn(rows, dim, generator=torch.Generator().manual_seed(0)) / 4
        self.dim_out = dim
        self.precision = "float32"

    def config(self) -> dict:
        return {"le_type": "stand-in", "pe_type": "none", "embed_dim": self.dim_out}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block[: len(x)]


def output_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def plain_write(path: Path, nbytes: int, chunk: int = 16 << 20) -> None:
    """``nbytes`` written sequentially in 16 MiB writes to a new file, then fsync: what the disk takes."""
    buf = memoryview(np.random.default_rng(0).integers(0, 255, chunk, dtype=np.uint8).tobytes())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = nbytes
        while left > 0:
            left -= os.write(fd, buf[: min(left, chunk)])
        os.fsync(fd)
    finally:
        os.close(fd)


_SIZES: dict = {}


@pytest.fixture(scope="module")
def standin():
    return StandIn()


@pytest.mark.parametrize("impl", ["stand-in", "plain-write"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def bench_pipeline_ceiling(benchmark, tmp_path, standin, fmt, dtype, impl):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    benchmark.group = f"pipeline-{fmt}-{dtype}"
    grid = S.GridSource(STEP, chunk_points=CHUNK)
    key = (fmt, dtype)
    if key not in _SIZES:  # the output's size in bytes, from one run (the stand-in row runs first)
        out = run_embedding(standin, grid, tmp_path / "size", fmt=fmt, out_dtype=dtype, progress=False)
        _SIZES[key] = output_bytes(out)
        shutil.rmtree(out)
    nbytes = _SIZES[key]
    counter = iter(range(10**6))

    def clean():  # each round writes a new output: the previous one is deleted first, and the disk
        for p in tmp_path.iterdir():  # settled (os.sync), both untimed
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        os.sync()

    if impl == "stand-in":
        def fn():
            run_embedding(standin, grid, tmp_path / f"o{next(counter)}", fmt=fmt, out_dtype=dtype, progress=False)
    else:
        def fn():
            plain_write(tmp_path / f"plain{next(counter)}.bin", nbytes)
    benchmark.extra_info["bytes"] = nbytes
    # 5 rounds: this disk writes at ~1.8 GB/s most of the time and at 0.4-1.0 GB/s now and then
    run(benchmark, fn, n_points=len(grid), impl=impl, rounds=5, setup=clean)
    if benchmark.stats is not None:  # None with --benchmark-disable (the smoke run)
        benchmark.extra_info["MB_per_s_at_best"] = nbytes / benchmark.stats.stats.min / 1e6


# ---- the real encoder's share: `satclip embed` against the encoder alone on the same points ----

SHARE_STEP = {10: 10.0 if SMOKE else 0.25, 40: 15.0 if SMOKE else 0.5}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    out = {}
    for L in (10, 40):
        torch.manual_seed(0)
        out[L] = satclip.save(satclip.LocationEncoder(L, 512, 2, 256).float().eval(), d / f"l{L}.safetensors")
    return out


@pytest.mark.parametrize("impl", ["satclip-embed-parquet", "satclip-embed-npy", "encoder-alone"])
@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("L", [10, 40])
def bench_embed_share(benchmark, tmp_path, checkpoints, L, precision, impl):
    from satclip.cli import main

    benchmark.group = f"embed-share-L{L}-{precision}"
    step = SHARE_STEP[L]
    chunk = 65536  # satclip embed's default --chunk-points
    grid = S.GridSource(step, chunk_points=chunk)
    counter = iter(range(10**6))

    def clean():
        for p in tmp_path.iterdir():
            shutil.rmtree(p)

    if impl == "encoder-alone":
        enc = satclip.load(checkpoints[L], dtype=torch.float32)
        enc.precision = precision
        chunks = [torch.from_numpy(np.stack([c.lon, c.lat], 1)).float() for c in grid.chunks()]

        def fn():
            with torch.no_grad():
                for x in chunks:
                    enc(x).numpy()
    else:
        def fn():
            out = tmp_path / f"o{next(counter)}"
            assert main(["embed", "--checkpoint", str(checkpoints[L]), "--grid", str(step), "--precision", precision,
                         "--format", impl.rsplit("-", 1)[1], "--out", str(out), "--quiet"]) == 0
    run(benchmark, fn, n_points=len(grid), impl=impl, rounds=3, setup=clean)

"""Crash windows, not quiet moments: a run killed (SIGKILL, from inside, at a chosen point: see
tests/embedding/fault_hooks) inside a shard write, between the files of a new output, or inside a
manifest write, then resumed with the same call, ends with exactly the rows of an uninterrupted
run. Every sink (Parquet; Zarr grid and flat; npy) x dtype (float32, float16, int8) x source
kind (full grid, land-only grid, table)."""

import itertools
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from conftest import fault_env
from satclip.embedding.reader import read_embeddings
from satclip.embedding.runner import run_embedding

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("zarr")
pytest.importorskip("global_land_mask")

FORMATS = ("parquet", "zarr", "npy")
DTYPES = ("float32", "float16", "int8")
SOURCES = ("grid", "land", "table")
# Where to crash: each site at its 2nd call, so that one chunk (or file) is already on disk.
# "create" only exists for the formats whose arrays are created up front.
SITES = {"parquet": ("shard:2", "manifest:3"), "zarr": ("shard:2", "create:2", "manifest:3"),
         "npy": ("shard:2", "create:2", "manifest:3")}
CASES = [(f, d, s, SITES[f][i % len(SITES[f])])
         for i, (f, d, s) in enumerate(itertools.product(FORMATS, DTYPES, SOURCES))]


def make_source(kind: str, table):
    if kind == "grid":
        return S.GridSource(15.0, chunk_points=48)          # 288 cells, 6 chunks of 2 rows
    if kind == "land":
        return S.GridSource(10.0, land_only=True, chunk_points=72)
    return S.TableSource(table, chunk_points=64)             # 300 rows, 5 chunks


_CHILD = r"""
import os, sys, torch, satclip
sys.path[:0] = [sys.argv[1], os.path.dirname(sys.argv[1])]  # this folder and tests/ (its conftest)
from test_crash_resume import make_source
from satclip.embedding.runner import run_embedding
enc = satclip.load(sys.argv[2], dtype=torch.float32)
fmt, dtype, kind, table, out = sys.argv[3:8]
run_embedding(enc, make_source(kind, table), out, fmt=fmt, out_dtype=dtype, progress=False)
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash")
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 8).float().eval()
    ckpt = satclip.save(enc, d / "enc.safetensors")
    rng = np.random.default_rng(0)
    table = d / "points.parquet"
    pq.write_table(pa.table({"lon": rng.uniform(-180, 180, 300), "lat": rng.uniform(-90, 90, 300)}), table)
    return satclip.load(ckpt, dtype=torch.float32), ckpt, table


@pytest.mark.parametrize("fmt,dtype,kind,site", CASES)
def test_crash_then_resume_gives_the_uninterrupted_rows(tmp_path, setup, fmt, dtype, kind, site):
    enc, ckpt, table = setup
    want = read_embeddings(run_embedding(enc, make_source(kind, table), tmp_path / "clean", fmt=fmt,
                                         out_dtype=dtype, progress=False))
    out = tmp_path / "crashed"
    env = fault_env(crash_at=site)
    proc = subprocess.run([sys.executable, "-c", _CHILD, os.path.dirname(__file__), str(ckpt), fmt, dtype, kind,
                           str(table), str(out)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"the run did not crash at {site}: {proc.stderr[-2000:]}"
    run_embedding(enc, make_source(kind, table), out, fmt=fmt, out_dtype=dtype, progress=False)  # the same call
    got = read_embeddings(out)
    for a, b, name in zip(got, want, ("ids", "lon", "lat", "embedding")):
        assert a.shape == b.shape and np.array_equal(a, b), name

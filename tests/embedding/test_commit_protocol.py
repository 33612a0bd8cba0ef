"""The commit protocol as readers meet it: a run killed with SIGKILL (mid-run, or before its first
chunk) leaves nothing at ``--out`` that pandas, polars, DuckDB, geopandas or xarray could take
for an output: the path does not exist, so each of them fails instead of reading a partial or
empty dataset. The same command resumes it, and then every reader sees every row. With
``publish_partial`` the rows are readable where they land, as they land."""

import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import satclip
from conftest import fault_env
from satclip.embedding import sources as S
from satclip.embedding.reader import read_embeddings
from satclip.embedding.runner import run_embedding
from satclip.embedding.state import read_manifest, staging_dir

pytest.importorskip("pyarrow")
N = 648  # a 10-degree grid, 9 chunks of 72 points

_CHILD = r"""
import sys, torch, satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding
enc = satclip.load(sys.argv[1], dtype=torch.float32)
run_embedding(enc, S.GridSource(10.0, chunk_points=72), sys.argv[2], fmt=sys.argv[3], progress=False,
              publish_partial=sys.argv[4] == "1")
"""


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return satclip.save(satclip.LocationEncoder(4, 16, 2, 8).float().eval(),
                        tmp_path_factory.mktemp("c") / "enc.safetensors")


def _killed(tmp_path, ckpt, fmt, site, publish_partial=False):
    out = tmp_path / f"{fmt}-{site.replace(':', '')}"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ckpt), str(out), fmt, str(int(publish_partial))],
                          env=fault_env(crash_at=site), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return out


def _parquet_readers(out):
    """Row counts as each installed reader of Parquet sees the folder (an exception where it fails)."""
    got = {}

    def attempt(name, fn):
        try:
            got[name] = fn()
        except Exception as exc:  # noqa: BLE001  (each reader fails its own way)
            got[name] = exc

    pd = pytest.importorskip("pandas")
    attempt("pandas", lambda: len(pd.read_parquet(out)))
    for mod, fn in (("polars", lambda m: m.read_parquet(out).height),
                    ("duckdb", lambda m: m.sql(f"SELECT count(*) FROM read_parquet('{out}/*.parquet')").fetchall()[0][0]),
                    ("geopandas", lambda m: len(m.read_parquet(out)))):
        try:
            m = __import__(mod)
        except ImportError:
            continue
        attempt(mod, lambda m=m, fn=fn: fn(m))
    return got


@pytest.mark.parametrize("site", ["shard:4", "manifest:2"])  # mid-run; before the first chunk
def test_a_killed_parquet_run_is_invisible_to_every_reader_until_resumed(tmp_path, ckpt, site):
    out = _killed(tmp_path, ckpt, "parquet", site)
    assert not out.exists()
    for reader, result in _parquet_readers(out).items():
        assert isinstance(result, Exception), f"{reader} read {result} rows of an unfinished run"
    if site == "shard:4":  # the rows written so far are kept, in the run state, for the resume
        assert len(list(staging_dir(out).glob("part-*.parquet"))) >= 1
    enc = satclip.load(ckpt, dtype=torch.float32)
    run_embedding(enc, S.GridSource(10.0, chunk_points=72), out, progress=False)  # the same call
    assert read_manifest(out)["complete"] and not staging_dir(out).exists()
    for reader, result in _parquet_readers(out).items():
        assert result == N, f"{reader}: {result}"


def test_a_killed_zarr_run_is_invisible_to_xarray_and_zarr(tmp_path, ckpt):
    xr = pytest.importorskip("xarray")
    zarr = pytest.importorskip("zarr")
    out = _killed(tmp_path, ckpt, "zarr", "shard:4")
    assert not out.exists()
    with pytest.raises(Exception):
        xr.open_zarr(out)
    with pytest.raises(Exception):
        zarr.open_group(str(out), mode="r")
    enc = satclip.load(ckpt, dtype=torch.float32)
    run_embedding(enc, S.GridSource(10.0, chunk_points=72), out, fmt="zarr", progress=False)
    ds = xr.open_zarr(out)
    assert ds.embedding.shape == (18, 36, 8) and np.isfinite(ds.embedding.values).all()


def test_publish_partial_shows_the_rows_as_they_land(tmp_path, ckpt):
    out = _killed(tmp_path, ckpt, "parquet", "shard:4", publish_partial=True)
    counts = _parquet_readers(out)
    assert all(0 < c < N for c in counts.values()), counts  # the shards written before the kill
    man = read_manifest(out)
    assert man["data"] == "out" and not man["complete"]
    enc = satclip.load(ckpt, dtype=torch.float32)
    run_embedding(enc, S.GridSource(10.0, chunk_points=72), out, progress=False)  # resumed without the flag
    assert all(c == N for c in _parquet_readers(out).values())
    assert len(read_embeddings(out)[0]) == N


def test_an_unfinished_run_moves_where_the_flag_says(tmp_path, ckpt):
    """Resumed with --publish-partial, a committing run's rows move to --out (one rename) and
    the rest land there; the manifest follows."""
    out = _killed(tmp_path, ckpt, "parquet", "shard:4")
    assert not out.exists()
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ckpt), str(out), "parquet", "1"],
                          env=fault_env(crash_at="shard:3"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert out.is_dir() and not staging_dir(out).exists() and read_manifest(out)["data"] == "out"
    enc = satclip.load(ckpt, dtype=torch.float32)
    run_embedding(enc, S.GridSource(10.0, chunk_points=72), out, progress=False, publish_partial=True)
    clean = run_embedding(enc, S.GridSource(10.0, chunk_points=72), tmp_path / "clean", progress=False)
    got, want = read_embeddings(out), read_embeddings(clean)
    for a, b in zip(got[:3], want[:3]):  # every row once, in order (the values: float32 rounding of three processes)
        assert np.array_equal(a, b)
    assert np.allclose(got[3], want[3], rtol=1e-4, atol=1e-5)


def test_the_cli_flag(tmp_path):
    from satclip.cli import main
    assert main(["embed", "--grid", "30", "--out", str(tmp_path / "p"), "--publish-partial", "--quiet"]) == 0
    assert main(["embed", "--grid", "30", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    for name in ("p", "c"):
        man = read_manifest(tmp_path / name)
        assert man["complete"] and man["data"] == "out" and not staging_dir(tmp_path / name).exists()

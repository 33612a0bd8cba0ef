"""The output folder is what standard tools read: a Parquet output is one dataset for pandas,
pyarrow, polars and DuckDB (the run state in _satclip/ is skipped by all of them); Zarr opens
with zarr; npy with numpy. Every reader that is installed is tried."""

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.reader import read_embeddings
from satclip.embedding.runner import run_embedding

pytest.importorskip("pyarrow")
N = 648  # a 10-degree grid


@pytest.fixture(scope="module")
def parquet_out(tmp_path_factory):
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 8).float().eval()
    out = tmp_path_factory.mktemp("r") / "emb"
    run_embedding(enc, S.GridSource(10.0, chunk_points=100), out, progress=False)
    assert (out / "_satclip" / "manifest.json").exists() and not (out / "manifest.json").exists()
    return out


def _check(out, ids, emb):
    """The rows a reader returned are every id once, with the embeddings satclip wrote."""
    ids = np.asarray(ids)
    order = np.argsort(ids)
    assert np.array_equal(ids[order], np.arange(N))
    got = np.stack([np.asarray(emb[i], dtype=np.float32) for i in order])
    assert np.array_equal(got, read_embeddings(out)[3])


def test_pandas(parquet_out):
    pd = pytest.importorskip("pandas")
    df = pd.read_parquet(parquet_out)
    assert list(df.columns[:4]) == ["id", "lon", "lat", "geometry"]
    _check(parquet_out, df["id"], df["embedding"])


def test_pyarrow_dataset(parquet_out):
    import pyarrow.dataset as ds
    t = ds.dataset(parquet_out, format="parquet").to_table()
    _check(parquet_out, t.column("id").to_numpy(), t.column("embedding").to_pylist())


def test_polars(parquet_out):
    pl = pytest.importorskip("polars")
    df = pl.read_parquet(str(parquet_out / "*.parquet"))
    _check(parquet_out, df["id"].to_numpy(), df["embedding"].to_list())


def test_duckdb(parquet_out):
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"SELECT id, embedding FROM read_parquet('{parquet_out}/*.parquet') ORDER BY id").fetchall()
    _check(parquet_out, [r[0] for r in rows], [r[1] for r in rows])
    [(n,)] = duckdb.sql(f"SELECT count(*) FROM '{parquet_out}/*.parquet' WHERE lat > 0").fetchall()
    assert n == N // 2


def test_zarr_and_npy(tmp_path):
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 8).float().eval()
    want = read_embeddings(run_embedding(enc, S.GridSource(10.0), tmp_path / "p", progress=False))[3]
    zarr = pytest.importorskip("zarr")
    import warnings
    run_embedding(enc, S.GridSource(10.0), tmp_path / "z", fmt="zarr", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run state folder must not trouble zarr
        root = zarr.open_group(str(tmp_path / "z"), mode="r")
        assert np.array_equal(root["embedding"][:].reshape(-1, 8), want)
        assert sorted(root.array_keys()) == ["embedding", "lat", "lon"]
    run_embedding(enc, S.GridSource(10.0), tmp_path / "n", fmt="npy", progress=False)
    assert np.array_equal(np.load(tmp_path / "n" / "embeddings.npy"), want)

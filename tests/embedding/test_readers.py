"""The output folder is what standard tools read, as it is: a Parquet output is one dataset for
pandas, pyarrow, polars, DuckDB and geopandas (each given the folder itself: the run state lives
beside it, in .<name>.satclip/); a Zarr output opens with zarr and with xarray (dimension
names, coordinates with units, the CRS; sel by lat/lon finds the cell); npy with numpy. Every
reader that is installed is tried."""

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding.state import state_dir
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
    assert (state_dir(out) / "manifest.json").exists() and not (out / "manifest.json").exists()
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
    df = pl.read_parquet(parquet_out)  # the folder itself
    _check(parquet_out, df["id"].to_numpy(), df["embedding"].to_list())


def test_duckdb(parquet_out):
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"SELECT id, embedding FROM read_parquet('{parquet_out}/*.parquet') ORDER BY id").fetchall()
    _check(parquet_out, [r[0] for r in rows], [r[1] for r in rows])
    [(n,)] = duckdb.sql(f"SELECT count(*) FROM '{parquet_out}/*.parquet' WHERE lat > 0").fetchall()
    assert n == N // 2
    [(m,)] = duckdb.sql(f"SELECT count(*) FROM '{parquet_out}/*.parquet' WHERE lat = 85 AND lon = -175").fetchall()
    assert m == 1  # cell centres are the decimal values a user types


def test_geopandas(parquet_out):
    gpd = pytest.importorskip("geopandas")
    gdf = gpd.read_parquet(parquet_out)
    assert gdf.geometry.name == "geometry" and (gdf.geometry.geom_type == "Point").all()
    assert np.allclose(gdf.geometry.x, gdf["lon"]) and np.allclose(gdf.geometry.y, gdf["lat"])
    _check(parquet_out, gdf["id"], gdf["embedding"])


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_xarray_opens_a_grid_and_finds_cells(tmp_path, dtype):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 8).float().eval()
    out = run_embedding(enc, S.GridSource(10.0, chunk_points=72), tmp_path / "z", fmt="zarr", out_dtype=dtype,
                        progress=False)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(out)
    assert ds.embedding.dims == ("lat", "lon", "embedding_dim") and ds.embedding.shape == (18, 36, 8)
    assert ds.lat.attrs["units"] == "degrees_north" and ds.lon.attrs["units"] == "degrees_east"
    assert ds.embedding.attrs["grid_mapping"] == "spatial_ref" and 'ID["EPSG",4326]' in ds.spatial_ref.attrs["crs_wkt"]
    assert ds.attrs["satclip"]["model_config"]["legendre_polys"] == 4
    cell = ds.embedding.sel(lat=44.0, lon=6.0, method="nearest")  # the cell centred at (5, 45)
    assert float(cell.lat) == 45.0 and float(cell.lon) == 5.0
    ids, lon, lat, emb = read_embeddings(out)
    row = int(np.flatnonzero((lat == 45.0) & (lon == 5.0))[0])
    if dtype == "int8":
        got = cell.values.astype(np.float32) * float(ds.embedding_scale.sel(lat=45.0, lon=5.0))
    else:
        got = cell.values
    assert np.array_equal(got, emb[row])
    with torch.no_grad():
        direct = enc(torch.tensor([[5.0, 45.0]])).numpy()[0]
    assert np.allclose(got, direct, atol=0.02 if dtype == "int8" else 1e-6)


def test_xarray_opens_a_flat_output(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 8).float().eval()
    pts = np.array([[10.0, 20.0], [-30.0, 40.0], [170.0, -80.0]])
    out = run_embedding(enc, S.ArraySource(pts), tmp_path / "f", fmt="zarr", progress=False)
    ds = xr.open_zarr(out)
    assert ds.embedding.dims == ("point", "embedding_dim") and set(ds.coords) >= {"lon", "lat", "id"}
    assert np.array_equal(ds.lon.values, pts[:, 0]) and np.array_equal(ds.embedding.values, read_embeddings(out)[3])


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
        assert sorted(root.array_keys()) == ["embedding", "lat", "lon", "spatial_ref"]
    run_embedding(enc, S.GridSource(10.0), tmp_path / "n", fmt="npy", progress=False)
    assert np.array_equal(np.load(tmp_path / "n" / "embeddings.npy"), want)

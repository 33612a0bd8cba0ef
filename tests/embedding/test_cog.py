"""--format cog: a tiled Cloud-Optimised GeoTIFF of a full grid, a named band per dimension, rows
top-down, EPSG:4326 with the cell edges' geotransform, nodata, overviews; float32, float16 (half
floats) and int8 (with its scales' own COG). rasterio.sample at a cell centre returns that cell's
embedding; rioxarray and gdalinfo (where installed) open it; a killed run resumes to the rows of
an uninterrupted one; a source that is not a full grid is refused."""

import shutil
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

rasterio = pytest.importorskip("rasterio")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(4, 16, 2, 8).float().eval()


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_cog_layout_and_samples(tmp_path, encoder, dtype):
    out = run_embedding(encoder, S.GridSource(5.0, chunk_points=720), tmp_path / "o", fmt="cog", out_dtype=dtype,
                        progress=False)
    assert sorted(p.name for p in out.iterdir()) == (["embedding_scale.tif", "embeddings.tif"] if dtype == "int8"
                                                     else ["embeddings.tif"])
    ids, lon, lat, emb = read_embeddings(out)
    with rasterio.open(out / "embeddings.tif") as ds:
        assert (ds.width, ds.height, ds.count) == (72, 36, 8) and ds.crs.to_epsg() == 4326
        assert tuple(ds.transform)[:6] == (5.0, 0.0, -180.0, 0.0, -5.0, 90.0)  # top-down, cell edges
        assert ds.descriptions == tuple(f"emb_{b:03d}" for b in range(8))
        assert ds.profile["tiled"] and ds.overviews(1)  # tiles and overviews: cloud-optimised
        assert ds.dtypes[0] == ("int8" if dtype == "int8" else "float32")
        assert (ds.nodata == -128) if dtype == "int8" else np.isnan(ds.nodata)
        if dtype == "float16":
            assert ds.tags(1, "IMAGE_STRUCTURE")["NBITS"] == "16"
        top_left = ds.read(window=((0, 1), (0, 1)))[:, 0, 0]
        centres = [(-177.5, 87.5), (12.5, -32.5), (177.5, -87.5)]
        samples = np.array(list(ds.sample(centres)), dtype=np.float32)
    if dtype == "int8":
        with rasterio.open(out / "embedding_scale.tif") as s:
            scales = np.array(list(s.sample(centres)))[:, 0]
        samples = samples * scales[:, None]
    for (x, y), got in zip(centres, samples):
        k = np.flatnonzero((lon == x) & (lat == y))[0]
        assert np.allclose(got, emb[k], rtol=0, atol=0), (x, y)  # the cell's own embedding, bit for bit
    k = np.flatnonzero((lon == -177.5) & (lat == 87.5))[0]
    assert np.array_equal(top_left.astype(np.float32) * (scales[0] if dtype == "int8" else 1), emb[k])


def test_rioxarray_and_gdalinfo(tmp_path, encoder):
    out = run_embedding(encoder, S.GridSource(10.0), tmp_path / "o", fmt="cog", progress=False)
    rioxarray = pytest.importorskip("rioxarray")
    da = rioxarray.open_rasterio(out / "embeddings.tif")
    assert da.shape == (8, 18, 36) and da.rio.crs.to_epsg() == 4326
    assert float(da.y[0]) == 85.0 and float(da.x[0]) == -175.0  # cell centres, north first
    if shutil.which("gdalinfo"):
        info = subprocess.run(["gdalinfo", str(out / "embeddings.tif")], capture_output=True, text=True, check=True)
        assert "LAYOUT=COG" in info.stdout and "Band 8" in info.stdout


def test_killed_run_resumes_to_the_uninterrupted_rows(tmp_path, encoder):
    ckpt = satclip.save(encoder, tmp_path / "enc.safetensors")
    child = ("import sys, torch, satclip; from satclip.embedding import sources as S; "
             "from satclip.embedding.runner import run_embedding; "
             "run_embedding(satclip.load(sys.argv[1], dtype=torch.float32), S.GridSource(10.0, chunk_points=72), "
             "sys.argv[2], fmt='cog', out_dtype='int8', progress=False)")
    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-c", child, str(ckpt), str(out)], env=fault_env(crash_at="shard:4"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not out.exists()
    enc = satclip.load(ckpt, dtype=torch.float32)
    run_embedding(enc, S.GridSource(10.0, chunk_points=72), out, fmt="cog", out_dtype="int8", progress=False)
    clean = run_embedding(enc, S.GridSource(10.0, chunk_points=72), tmp_path / "c", fmt="cog", out_dtype="int8",
                          progress=False)
    got, want = read_embeddings(out), read_embeddings(clean)
    for a, b in zip(got[:3], want[:3]):  # every cell once, in order
        assert np.array_equal(a, b)
    # the values: two processes' float32 encoders may round a code to its neighbour
    assert np.allclose(got[3], want[3], atol=np.abs(want[3]).max() / 127 * 1.01)
    logs = []
    run_embedding(enc, S.GridSource(10.0, chunk_points=72), out, fmt="cog", out_dtype="int8", progress=False,
                  verify=True, log=logs.append)  # every chunk read back from the COG against its checksum
    assert any("every byte): intact" in m for m in logs), logs


def test_zstd_by_default_none_when_asked(tmp_path, encoder):
    """A COG is ZSTD-compressed unless compression="none" (measured smaller and faster); both
    read back the same embeddings."""
    grid = S.GridSource(10.0)
    zstd = run_embedding(encoder, grid, tmp_path / "z", fmt="cog", progress=False)
    plain = run_embedding(encoder, grid, tmp_path / "n", fmt="cog", compression="none", progress=False)
    with rasterio.open(zstd / "embeddings.tif") as a, rasterio.open(plain / "embeddings.tif") as b:
        assert a.compression.name.lower() == "zstd" and b.compression is None
    for x, y in zip(read_embeddings(zstd), read_embeddings(plain)):
        assert np.array_equal(x, y, equal_nan=True)


def test_only_full_grids(tmp_path, encoder):
    with pytest.raises(ValueError, match="fmt='cog' stores a full lat/lon grid"):
        run_embedding(encoder, S.GridSource(10.0, land_only=True), tmp_path / "o", fmt="cog", progress=False)
    from satclip.cli import main
    with pytest.raises(SystemExit, match="--format cog stores a full lat/lon grid"):
        main(["embed", "--healpix", "2", "--format", "cog", "--out", str(tmp_path / "h"), "--quiet"])

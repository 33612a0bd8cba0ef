"""Embedding at scale: in-memory API, sources, sinks, refusals, CLI (kill and resume:
test_crash_resume.py)."""

import json

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding
from satclip.embedding.state import read_manifest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(6, 32, 2, 8).float().eval()


def _direct(enc, lon, lat):
    with torch.no_grad():
        return enc(torch.tensor(np.stack([lon, lat], 1), dtype=torch.float32)).numpy()


def _read_parquet(out):
    t = pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))])
    return t.column("id").to_numpy(), t.column("lon").to_numpy(), t.column("lat").to_numpy(), \
        np.stack(t.column("embedding").to_numpy(zero_copy_only=False))


def test_embed_in_memory_inputs(encoder):
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(-180, 180, 500), rng.uniform(-90, 90, 500)], 1)
    want = _direct(encoder, pts[:, 0], pts[:, 1])
    assert np.allclose(satclip.embed(encoder, pts, chunk_points=64), want, atol=1e-6)
    assert np.allclose(satclip.embed(encoder, pts[:, ::-1], order="latlon"), want, atol=1e-6)
    t = satclip.embed(encoder, torch.from_numpy(pts))
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), want, atol=1e-6)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"Latitude": pts[:, 1], "Longitude": pts[:, 0]})
    assert np.allclose(satclip.embed(encoder, df), want, atol=1e-6)
    assert satclip.embed(encoder, pts, out_dtype="float16").dtype == np.float16
    with pytest.raises(ValueError, match="out_dtype"):
        satclip.embed(encoder, pts, out_dtype="int8")  # would truncate floats silently
    with pytest.raises(ValueError, match="latitude outside"):
        satclip.embed(encoder, pts[:, ::-1])  # lat-first data passed as lon-first


def test_grid_counts_and_centres():
    g = S.GridSource(10.0, chunk_points=100)
    assert len(g) == 18 * 36 and g.num_chunks == 7
    chunks = list(g.chunks())
    lon = np.concatenate([c.lon for c in chunks])
    lat = np.concatenate([c.lat for c in chunks])
    assert len(lon) == 648 and lon.min() == -175 and lon.max() == 175 and lat.min() == -85 and lat.max() == 85
    assert len(set(zip(lon, lat))) == 648
    with pytest.raises(ValueError, match="divide 180"):
        S.GridSource(7.0)


def test_land_only_grid():
    pytest.importorskip("global_land_mask")
    from global_land_mask import globe
    g = S.GridSource(5.0, land_only=True, chunk_points=500)
    chunks = list(g.chunks())
    n = sum(len(c.ids) for c in chunks)
    assert n == len(g) and 0.2 * 2592 < n < 0.4 * 2592  # about 29% of the Earth is land
    for c in chunks:
        assert globe.is_land(c.lat, c.lon).all()
    assert [c.start for c in chunks] == list(np.concatenate([[0], np.cumsum([len(c.ids) for c in chunks])[:-1]]))


def test_healpix_and_h3_counts():
    pytest.importorskip("healpy")
    hp = S.HealpixSource(4, chunk_points=50)
    assert len(hp) == 12 * 16 == sum(len(c.ids) for c in hp.chunks())
    lon = np.concatenate([c.lon for c in hp.chunks()])
    assert lon.min() >= -180 and lon.max() <= 180
    with pytest.raises(ValueError, match="nside"):
        S.HealpixSource(3, nest=True)
    pytest.importorskip("h3")
    src = S.H3Source(1, chunk_points=100)
    assert len(src) == 842 == sum(len(c.ids) for c in src.chunks())  # 2 + 120 * 7 cells at resolution 1


@pytest.mark.parametrize("fmt", ["parquet", "npy", "zarr"])
def test_sinks_round_trip(tmp_path, encoder, fmt):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    src = S.GridSource(15.0, chunk_points=50)  # Zarr aligns this to whole rows (48)
    out = run_embedding(encoder, src, tmp_path / "out", fmt=fmt, progress=False)
    man = read_manifest(out)
    assert man["complete"] and man["done"] == list(range(src.num_chunks))
    if fmt == "parquet":
        ids, lon, lat, emb = _read_parquet(out)
        meta = pq.read_schema(next(out.glob("part-*.parquet"))).metadata
        assert json.loads(meta[b"geo"])["primary_column"] == "geometry"
        assert json.loads(meta[b"satclip"])["model_config"]["legendre_polys"] == 6
    elif fmt == "npy":
        emb, ids, ll = np.load(out / "embeddings.npy"), np.load(out / "ids.npy"), np.load(out / "lonlat.npy")
        lon, lat = ll[:, 0], ll[:, 1]
    else:
        import zarr
        root = zarr.open_group(str(out), mode="r")
        assert root.attrs["layout"] == "grid" and root["embedding"].shape == (12, 24, 8)
        assert np.allclose(root["lat"][:], -82.5 + 15 * np.arange(12))
        assert np.allclose(root["lon"][:], -172.5 + 15 * np.arange(24))
        lon2, lat2 = np.meshgrid(root["lon"][:], root["lat"][:])
        emb, lon, lat = root["embedding"][:].reshape(-1, 8), lon2.reshape(-1), lat2.reshape(-1)
        ids = np.arange(len(lon))
    assert len(ids) == len(src) and np.array_equal(ids, np.arange(len(src)))
    assert np.allclose(emb, _direct(encoder, lon, lat), atol=1e-6)


def test_zarr_flat_layout_for_points(tmp_path, encoder):
    pytest.importorskip("zarr")
    import zarr
    pts = np.random.default_rng(3).uniform([-180, -90], [180, 90], size=(700, 2))
    out = run_embedding(encoder, S.ArraySource(pts, chunk_points=256), tmp_path / "z", fmt="zarr", progress=False)
    root = zarr.open_group(str(out), mode="r")
    assert root.attrs["layout"] == "flat" and root["embedding"].shape == (700, 8)
    assert np.allclose(root["embedding"][:], _direct(encoder, pts[:, 0], pts[:, 1]), atol=1e-6)


def test_float16_output(tmp_path, encoder):
    out = run_embedding(encoder, S.GridSource(30.0), tmp_path / "o", out_dtype="float16", progress=False)
    t = pq.read_table(next(out.glob("part-*.parquet")))
    assert t.schema.field("embedding").type.value_type == pa.float16()


@pytest.mark.parametrize("fmt,src", [("parquet", "grid"), ("npy", "grid"), ("zarr", "grid"), ("zarr", "points")])
def test_int8_output_with_per_point_scale(tmp_path, encoder, fmt, src):
    """Codes + one scale per point on disk; reading back gives the embedding to half a step."""
    if fmt == "zarr":
        pytest.importorskip("zarr")
    from satclip.embedding.reader import read_embeddings
    pts = np.random.default_rng(5).uniform([-180, -90], [180, 90], size=(300, 2))
    source = S.GridSource(15.0, chunk_points=48) if src == "grid" else S.ArraySource(pts, chunk_points=128)
    out = run_embedding(encoder, source, tmp_path / "q", fmt=fmt, out_dtype="int8", progress=False)
    ids, lon, lat, emb = read_embeddings(out)
    want = _direct(encoder, lon, lat)
    step = np.abs(want).max(axis=1, keepdims=True) / 127
    assert emb.dtype == np.float32 and np.all(np.abs(emb - want) <= step / 2 + 1e-6)
    assert np.abs(emb - want).max() > 0  # really quantised
    if fmt == "parquet":
        t = pq.read_table(next(out.glob("part-*.parquet")))
        assert t.schema.field("embedding").type.value_type == pa.int8()
        assert t.schema.field("embedding_scale").type == pa.float32()
    elif fmt == "npy":
        assert np.load(out / "embeddings.npy").dtype == np.int8 and np.load(out / "scales.npy").shape == (len(ids),)


def test_device_side_conversion_matches_the_writer():
    """What a GPU converts before the copy to the host (float16; int8 codes + scales) equals what
    the writer thread converts, bit for bit (run here on CPU tensors: the same torch ops)."""
    from satclip.embedding.convert import Scratch, convert, quantize_int8
    from satclip.embedding.executors import hand_over
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(500, 64, generator=g) * torch.logspace(-3, 2, 500)[:, None]
    emb[7] = 0  # an all-zero row: scale 1, codes 0
    emb[8, :] = torch.tensor([0.5, -1.5, 2.5, 127.0] * 16)  # scale 1: exact ties, rounded to even
    codes, scale = quantize_int8(emb.numpy())
    t_codes, t_scale = satclip.ops.ops.quantize_int8(emb)
    assert np.array_equal(codes, t_codes.numpy()) and np.array_equal(scale, t_scale.numpy())
    assert codes[8, :4].tolist() == [0, -2, 2, 127]
    host = convert(emb, "int8")  # what a GPU converts before the copy
    assert np.array_equal(host.values, codes) and np.array_equal(host.scale, scale)
    in_writer = convert(emb, "int8", Scratch())  # what a writer thread converts, into its reused buffers
    assert np.array_equal(in_writer.values, codes) and np.array_equal(in_writer.scale, scale)
    assert np.array_equal(convert(emb, "float16").values, emb.numpy().astype(np.float16))
    assert np.array_equal(convert(emb, "float16", Scratch()).values, emb.numpy().astype(np.float16))
    assert hand_over(emb, "float16").dtype == torch.float32  # on the CPU the writer thread converts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("out_dtype", ["float16", "int8"])
def test_cuda_embedding_equals_cpu_conversion(tmp_path, encoder, out_dtype):
    import copy

    from satclip.embedding.reader import read_embeddings
    source = S.GridSource(15.0, chunk_points=48)
    on_gpu = copy.deepcopy(encoder)  # run_embedding moves the module it is given
    cpu = read_embeddings(run_embedding(encoder, source, tmp_path / "cpu", fmt="npy", out_dtype=out_dtype,
                                        progress=False))[3]
    gpu = read_embeddings(run_embedding(on_gpu, source, tmp_path / "gpu", fmt="npy", out_dtype=out_dtype,
                                        device="cuda", progress=False))[3]
    step = np.abs(cpu).max(axis=1, keepdims=True) / (127 if out_dtype == "int8" else 1000)
    assert np.all(np.abs(gpu - cpu) <= step + 1e-5)  # the encoders differ in float32 rounding only


def test_table_sources(tmp_path, encoder):
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(-180, 180, 1000), rng.uniform(-90, 90, 1000)
    pq.write_table(pa.table({"site": np.arange(1000) * 7, "longitude": lon, "latitude": lat}), tmp_path / "p.parquet")
    out = run_embedding(encoder, S.TableSource(tmp_path / "p.parquet", id_col="site", chunk_points=300),
                        tmp_path / "o1", progress=False)
    ids, lo, la, emb = _read_parquet(out)
    assert np.array_equal(ids, np.arange(1000) * 7) and np.allclose(lo, lon)
    assert np.allclose(emb, _direct(encoder, lon, lat), atol=1e-6)
    # our own GeoParquet output read back through its point geometry
    (tmp_path / "geo.parquet").write_bytes(next(out.glob("part-000000.parquet")).read_bytes())
    geo = pq.read_table(tmp_path / "geo.parquet").drop_columns(["lon", "lat"])
    pq.write_table(geo, tmp_path / "geo2.parquet")
    src = S.TableSource(tmp_path / "geo2.parquet")
    assert src.geometry == "geometry"
    c = next(src.chunks())
    assert np.allclose(c.lon, lon[:300]) and np.allclose(c.lat, lat[:300])
    # CSV, with a bad latitude named in the error
    csv = tmp_path / "p.csv"
    csv.write_text("lon,lat\n10,20\n30,95\n")
    with pytest.raises(ValueError, match="latitude outside"):
        list(S.TableSource(csv).chunks())


def test_refusals(tmp_path, encoder):
    out = tmp_path / "o"
    run_embedding(encoder, S.GridSource(30.0), out, progress=False)
    torch.manual_seed(1)  # other weights than the fixture's
    other = satclip.LocationEncoder(6, 32, 2, 8).float()
    with pytest.raises(ValueError, match="different model"):
        run_embedding(other, S.GridSource(30.0), out, progress=False)
    with pytest.raises(ValueError, match="different source"):
        run_embedding(encoder, S.GridSource(15.0), out, progress=False)
    run_embedding(other, S.GridSource(30.0), out, overwrite=True, progress=False)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a satclip embedding output"):
        run_embedding(encoder, S.GridSource(30.0), foreign, overwrite=True, progress=False)
    assert (foreign / "keep.txt").read_text() == "precious"


def test_cli_embed(tmp_path, encoder, capsys):
    from satclip.cli import main
    ckpt = satclip.save(encoder, tmp_path / "enc.safetensors")
    out = tmp_path / "grid"
    assert main(["embed", "--checkpoint", str(ckpt), "--grid", "30", "--out", str(out), "--quiet"]) == 0
    ids, lon, lat, emb = _read_parquet(out)
    assert len(ids) == 72 and emb.shape == (72, 8)
    with pytest.raises(SystemExit, match="exactly one"):
        main(["embed", "--checkpoint", str(ckpt), "--grid", "30", "--h3", "1", "--out", str(out)])
    # without --checkpoint: the bundled default model, and it says so
    assert main(["embed", "--grid", "30", "--out", str(tmp_path / "x"), "--format", "npy"]) == 0
    assert "bundled default model" in capsys.readouterr().err
    default = satclip.default_model()
    ll = np.load(tmp_path / "x" / "lonlat.npy")
    with torch.no_grad():
        want = default(torch.from_numpy(ll).float()).numpy()
    assert np.allclose(np.load(tmp_path / "x" / "embeddings.npy"), want, atol=1e-6) and want.shape == (72, 256)
    with pytest.raises(SystemExit, match="different source"):
        main(["embed", "--checkpoint", str(ckpt), "--grid", "15", "--out", str(out), "--quiet"])
    # --precision: the fused encoder's GEMM operand mode, recorded in the manifest
    out16 = tmp_path / "bf16"
    assert main(["embed", "--checkpoint", str(ckpt), "--grid", "30", "--out", str(out16), "--format", "npy",
                 "--precision", "bf16", "--quiet"]) == 0
    assert read_manifest(out16)["precision"] == "bf16"
    enc16 = satclip.load(ckpt, dtype=torch.float32)
    enc16.precision = "bf16"
    with torch.no_grad():
        want = enc16(torch.from_numpy(np.load(out16 / "lonlat.npy")).float()).numpy()
    assert np.allclose(np.load(out16 / "embeddings.npy"), want, atol=1e-6)
    with pytest.raises(SystemExit, match="applies to float32 encoders"):
        main(["embed", "--checkpoint", str(ckpt), "--grid", "30", "--out", str(tmp_path / "f64"),
              "--model-dtype", "float64", "--precision", "bf16", "--quiet"])

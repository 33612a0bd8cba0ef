"""Outputs as embedding products: every completed output has a STAC Collection and Item that
pystac reads and that satisfy the Embeddings extension v0.0.1 (checked against a schema written
from its specification, tests/data/conventions), with exactly one stated deviation: emb:type is
'location' (the specification knows 'pixel' and 'chip'). GeoParquet carries a bbox covering
column that geopandas filters by and an `emb` metadata key; Zarr groups carry the geoemb:,
proj: and spatial: attributes; int8 outputs state their quantisation; `satclip info OUT` prints
the STAC."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.products import LOCATION_TYPE, read_stac
from satclip.embedding.runner import run_embedding

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
jsonschema = pytest.importorskip("jsonschema")
SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "conventions"


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    torch.manual_seed(0)
    path = satclip.save(satclip.LocationEncoder(4, 16, 2, 8).float().eval(),
                        tmp_path_factory.mktemp("m") / "satclip-vit16-l10.ckpt.safetensors")
    return satclip.load(path, dtype=torch.float32)


def _errors(schema_file: str, doc: dict) -> list:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    return sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))


def _only_the_location_type_deviates(schema_file: str, doc: dict, key: str) -> None:
    """The document is valid but for its type, and valid outright once the type is one the
    specification knows: the deviation is that one value, nothing else."""
    assert doc[key] == LOCATION_TYPE
    assert _errors(schema_file, dict(doc, **{key: "pixel"})) == []
    assert _errors(schema_file, doc) != []


@pytest.mark.parametrize("fmt,dtype", [("parquet", "float32"), ("zarr", "int8"), ("npy", "float16")])
def test_stac_collection_and_item(tmp_path, encoder, fmt, dtype):
    pystac = pytest.importorskip("pystac")
    if fmt == "zarr":
        pytest.importorskip("zarr")
    out = run_embedding(encoder, S.GridSource(30.0, chunk_points=48), tmp_path / "o", fmt=fmt, out_dtype=dtype,
                        progress=False)
    collection, item = read_stac(out)
    c, i = pystac.Collection.from_dict(collection), pystac.Item.from_dict(item)
    assert c.id == i.collection_id and i.bbox == [-165.0, -75.0, 165.0, 75.0]
    assert i.assets["embeddings"].roles == ["data"]
    stac_dir = Path(satclip.embedding.state.state_dir(out)) / "stac"
    assert (stac_dir / item["assets"]["embeddings"]["href"]).resolve() == out.resolve()  # the asset is the output
    rels = {link["rel"]: link for link in collection["links"]}
    assert "emb:model" in rels and "emb:source-data" in rels
    assert collection["emb:dimensions"] == 8 and collection["data_type"] == dtype
    assert item["properties"]["emb:runtime_parameters"]["legendre_polys"] == 4
    if dtype == "int8":
        q = item["properties"]["emb:quantization"]
        assert q["original_dtype"] == "float32" and q["quantized_dtype"] == "int8"
        assert "embedding = code * embedding_scale" in q["method"]
    else:
        assert "emb:quantization" not in item["properties"]
    assert _errors("stac-embeddings-v0.0.1.schema.json", item) == []  # the Item has no type field to deviate
    _only_the_location_type_deviates("stac-embeddings-v0.0.1.schema.json", collection, "emb:type")


def test_geoparquet_covering_bbox_filter_and_emb_key(tmp_path, encoder):
    gpd = pytest.importorskip("geopandas")
    out = run_embedding(encoder, S.GridSource(10.0, chunk_points=72), tmp_path / "o", progress=False)
    f = pq.ParquetFile(next(out.glob("*.parquet")))
    geo = json.loads(f.schema_arrow.metadata[b"geo"])["columns"]["geometry"]
    assert geo["covering"]["bbox"]["xmin"] == ["bbox", "xmin"] and len(geo["bbox"]) == 4
    emb = json.loads(f.schema_arrow.metadata[b"emb"])
    assert emb["emb:type"] == LOCATION_TYPE and emb["emb:dimensions"] == 8 and emb["emb:model_fingerprint"]
    g = gpd.read_parquet(out, bbox=(0, 0, 30, 30))  # geopandas filters by the covering column
    assert len(g) == 9 and g.geometry.x.between(0, 30).all() and g.geometry.y.between(0, 30).all()
    stats = f.metadata.row_group(0).column(f.schema_arrow.get_field_index("bbox")).statistics  # bbox.xmin
    assert stats.has_min_max  # what a reader prunes row groups with


def test_duckdb_filters_on_the_covering(tmp_path, encoder):
    duckdb = pytest.importorskip("duckdb")
    src = tmp_path / "pts.parquet"
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"lon": rng.uniform(-180, 180, 2000), "lat": rng.uniform(-90, 90, 2000)}), src)
    out = run_embedding(encoder, S.TableSource(src, chunk_points=250, sort="hilbert"), tmp_path / "o", progress=False)
    q = (f"SELECT count(*) FROM read_parquet('{out}/*.parquet') WHERE bbox.xmin >= 0 AND bbox.xmax <= 90 "
         "AND bbox.ymin >= 0 AND bbox.ymax <= 45")
    [(n,)] = duckdb.sql(q).fetchall()
    ids = pq.read_table(out).column("id").to_numpy()
    t = pq.read_table(src)
    lon, lat = t.column("lon").to_numpy()[ids], t.column("lat").to_numpy()[ids]
    assert n == int(((lon >= 0) & (lon <= 90) & (lat >= 0) & (lat <= 45)).sum()) > 0
    plan = duckdb.sql(f"EXPLAIN {q}").fetchall()[0][1]
    assert "bbox" in plan and "Filters" in plan  # the filter is pushed into the Parquet scan


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_zarr_conventions(tmp_path, encoder, dtype):
    zarr = pytest.importorskip("zarr")
    out = run_embedding(encoder, S.GridSource(30.0, chunk_points=48), tmp_path / "o", fmt="zarr", out_dtype=dtype,
                        progress=False)
    attrs = dict(zarr.open_group(str(out), mode="r").attrs)
    assert {c["name"] for c in attrs["zarr_conventions"]} == {"geoemb:", "proj:", "spatial:"}
    assert attrs["proj:code"] == "EPSG:4326" and attrs["spatial:shape"] == [6, 12]
    a, b, c, d, e, f = attrs["spatial:transform"]
    assert (a * 0.5 + c, e * 0.5 + f) == (-165.0, -75.0)  # index (0.5, 0.5) is the first cell's centre
    if dtype == "int8":
        assert attrs["geoemb:quantization"]["scale"] == {"type": "array", "array_name": "embedding_scale",
                                                         "nodata": "NaN"}
    _only_the_location_type_deviates("geoemb-zarr-v1.schema.json", attrs, "geoemb:type")


def test_compressed_outputs_read_back_the_same(tmp_path, encoder):
    pytest.importorskip("zarr")
    from satclip.embedding.reader import read_embeddings
    for fmt in ("parquet", "zarr"):
        plain = read_embeddings(run_embedding(encoder, S.GridSource(10.0, chunk_points=72), tmp_path / f"{fmt}-p",
                                              fmt=fmt, out_dtype="int8", progress=False))
        zstd = read_embeddings(run_embedding(encoder, S.GridSource(10.0, chunk_points=72), tmp_path / f"{fmt}-z",
                                             fmt=fmt, out_dtype="int8", progress=False, compression="zstd"))
        for a, b in zip(plain, zstd):
            assert np.array_equal(a, b, equal_nan=True)
    with pytest.raises(ValueError, match="fmt='npy' stores values as they are"):
        run_embedding(encoder, S.GridSource(30.0), tmp_path / "n", fmt="npy", compression="zstd", progress=False)


def test_int8_parquet_stores_about_a_byte_per_value(tmp_path):
    """Parquet has no 8-bit physical type (int8 is INT32 underneath, 4 bytes): the dictionary
    encoding of the codes brings them back to about one byte each, with the codes unchanged."""
    from satclip.embedding.reader import read_embeddings
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 32, 2, 128).float().eval()
    out = run_embedding(enc, S.GridSource(2.0), tmp_path / "q", out_dtype="int8", progress=False)
    ids, lon, lat, emb = read_embeddings(out)
    values = emb.size
    column = 0
    for p in out.glob("*.parquet"):
        meta = pq.ParquetFile(p).metadata
        for g in range(meta.num_row_groups):
            cols = [meta.row_group(g).column(i) for i in range(meta.num_columns)]
            column += sum(c.total_compressed_size for c in cols if c.path_in_schema.startswith("embedding."))
    assert pq.ParquetFile(next(out.glob("*.parquet"))).schema_arrow.field("embedding").type.value_type == pa.int8()
    assert column < 1.15 * values, f"{column / values:.2f} bytes per int8 value"
    codes = pq.read_table(out).column("embedding").combine_chunks().flatten().to_numpy()
    assert codes.min() >= -127 and codes.max() <= 127 and len(codes) == values


def test_info_prints_the_stac(tmp_path, encoder, capsys):
    from satclip.cli import main
    out = run_embedding(encoder, S.GridSource(30.0), tmp_path / "o", progress=False)
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "emb:type: location" in text and "emb:dimensions: 8" in text and str(out) in text
    assert main(["info", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["collection"]["emb:dimensions"] == 8 and doc["item"]["assets"]["embeddings"]


def test_model_card_of_a_released_file_name(encoder):
    from satclip.embedding.products import model_card
    card = model_card(encoder.config(), "/data/satclip-vit16-l40.ckpt")
    assert card["href"] == "https://huggingface.co/microsoft/SatCLIP-ViT16-L40" and card["licence"] == "MIT"
    assert model_card(encoder.config(), "bundled")["training_data"].startswith("https://visibleearth")
    assert model_card(encoder.config(), None)["licence"] == "other"

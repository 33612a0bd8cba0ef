"""Tables as users meet them: a ;-separated CSV with a byte-order mark and a .tsv read as they
are (the separator read off the header line, or given with sep / --sep); a separator that does
not split the header is refused naming the file and the option; an empty or damaged Parquet file
is named; `--keep-cols all` on a GeoParquet with lon/lat columns carries every column but the
geometry; int8 outputs say their formula in the file metadata; runs close with points/s."""

import json

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.errors import SettingError
from satclip.embedding.reader import read_embeddings
from satclip.embedding.runner import run_embedding

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(4, 16, 2, 8).float().eval()


@pytest.mark.parametrize("name,text", [
    ("semi.csv", "\ufeffsite;lon;lat\na;10.5;45.25\nb;-70.125;-12.5\n"),
    ("points.tsv", "site\tlon\tlat\na\t10.5\t45.25\nb\t-70.125\t-12.5\n"),
    ("pipes.txt", "site|lon|lat\na|10.5|45.25\nb|-70.125|-12.5\n"),
])
def test_separators_are_read_off_the_header(tmp_path, encoder, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    src = S.TableSource(path, id_col="site", keep_cols=["*"])
    out = run_embedding(encoder, src, tmp_path / "o", progress=False)
    t = pq.read_table(out)
    assert t.column("id").to_pylist() == ["a", "b"]
    assert t.column("lon").to_pylist() == [10.5, -70.125] and t.column("lat").to_pylist() == [45.25, -12.5]


def test_a_separator_that_does_not_split_the_header_is_named(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon;lat\n10;20\n")
    with pytest.raises(SettingError, match=r"p\.csv: the header 'lon;lat' reads as one column .* sep") as e:
        S.TableSource(path, sep=",")
    assert "--sep" in e.value.cli()
    assert S.TableSource(path).sep == ";"
    with pytest.raises(SettingError, match="sep='x' applies to text tables"):
        pq.write_table(pa.table({"lon": [1.0], "lat": [2.0]}), tmp_path / "p.parquet")
        S.TableSource(tmp_path / "p.parquet", sep="x")


def test_empty_and_damaged_parquet_files_are_named(tmp_path):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.parquet: empty file \(0 bytes\)"):
        S.TableSource(empty)
    damaged = tmp_path / "damaged.parquet"
    pq.write_table(pa.table({"lon": [1.0], "lat": [2.0]}), damaged)
    damaged.write_bytes(damaged.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"damaged\.parquet: not a readable Parquet file"):
        S.TableSource(damaged)


def test_keep_all_on_geoparquet_with_lonlat_columns(tmp_path, encoder):
    gpd = pytest.importorskip("geopandas")
    shapely = pytest.importorskip("shapely")
    g = gpd.GeoDataFrame({"site": ["a", "b"], "lon": [10.0, -30.0], "lat": [20.0, 5.0], "biome": ["x", "y"]},
                         geometry=[shapely.Point(10, 20), shapely.Point(-30, 5)], crs="EPSG:4326")
    g.to_parquet(tmp_path / "g.parquet")
    src = S.TableSource(tmp_path / "g.parquet", keep_cols=["*"])
    assert src.left_out == ["geometry"] and src.keep_cols == ["site", "biome"]
    out = run_embedding(encoder, src, tmp_path / "o", progress=False)
    assert pq.read_table(out).column_names[-2:] == ["site", "biome"]


def test_int8_formula_in_the_file_metadata_and_points_per_second(tmp_path, encoder):
    logs = []
    out = run_embedding(encoder, S.GridSource(30.0), tmp_path / "o", out_dtype="int8", progress=False,
                        log=logs.append)
    meta = json.loads(pq.read_schema(next(out.glob("*.parquet"))).metadata[b"satclip"])
    assert meta["int8"] == "embedding = code * embedding_scale"
    ids, _, _, emb = read_embeddings(out)
    t = pq.read_table(out)
    codes = np.stack(t.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    assert np.allclose(codes * t.column("embedding_scale").to_numpy()[:, None], emb)
    assert any(m.startswith("72 rows written of 72 expected in ") and m.endswith(" points/s)") for m in logs), logs


def test_hilbert_curve_visits_every_cell_once_through_neighbours():
    from satclip.embedding.sources import hilbert_index
    n = 1 << 4
    x, y = np.meshgrid(np.arange(n), np.arange(n))
    lon = -180.0 + (x.ravel() + 0.5) * 360.0 / n
    lat = -90.0 + (y.ravel() + 0.5) * 180.0 / n
    d = hilbert_index(lon, lat, order=4)
    assert sorted(d) == list(range(n * n))  # a bijection onto the cells
    order = np.argsort(d)
    steps = np.abs(np.diff(x.ravel()[order])) + np.abs(np.diff(y.ravel()[order]))
    assert (steps == 1).all()  # each next cell is a neighbour


def test_sort_hilbert_keeps_the_ids_and_groups_nearby_points(tmp_path, encoder):
    rng = np.random.default_rng(3)
    n = 4000
    src = tmp_path / "p.parquet"
    pq.write_table(pa.table({"site": [f"s{i}" for i in range(n)], "lon": rng.uniform(-180, 180, n),
                             "lat": rng.uniform(-90, 90, n)}), src)
    plain = run_embedding(encoder, S.TableSource(src, id_col="site", chunk_points=500), tmp_path / "a", progress=False)
    hil = run_embedding(encoder, S.TableSource(src, id_col="site", chunk_points=500, sort="hilbert"), tmp_path / "b",
                        progress=False)
    ta, tb = pq.read_table(plain), pq.read_table(hil)
    assert sorted(tb.column("id").to_pylist()) == sorted(ta.column("id").to_pylist())
    by_id = dict(zip(ta.column("id").to_pylist(), ta.column("embedding").to_pylist()))
    assert all(np.allclose(by_id[i], e) for i, e in zip(tb.column("id").to_pylist(), tb.column("embedding").to_pylist()))
    def mean_shard_area(out):
        areas = []
        for p in sorted(out.glob("*.parquet")):
            t = pq.read_table(p, columns=["lon", "lat"])
            lon, lat = t.column("lon").to_numpy(), t.column("lat").to_numpy()
            areas.append((lon.max() - lon.min()) * (lat.max() - lat.min()))
        return np.mean(areas)
    assert mean_shard_area(hil) < mean_shard_area(plain) / 4  # each shard covers a small extent
    with pytest.raises(SettingError, match="sort='z' is not an order"):
        S.TableSource(src, sort="z")

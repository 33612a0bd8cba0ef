"""The Parquet output is GeoParquet 1.1: the geometry column holds WKB points that decode (here
with struct, independently of the writer and of satclip's reader) to x = lon, y = lat, and the
``geo`` metadata follows the specification (version, primary column, encoding, types; no crs
key, which means OGC:CRS84, longitude first)."""

import json
import struct

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding

pq = pytest.importorskip("pyarrow.parquet")


def _decode(wkb: bytes) -> tuple[float, float]:
    order = "<" if wkb[0] == 1 else ">"
    (gtype,) = struct.unpack(order + "I", wkb[1:5])
    assert gtype == 1 and len(wkb) == 21, "a 2D WKB point"
    return struct.unpack(order + "dd", wkb[5:21])


def test_wkb_points_are_lon_lat_and_geo_metadata_is_geoparquet_1_1(tmp_path):
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(3, 8, 1, 4).float().eval()
    pts = np.array([[-120.5, 47.25], [2.35, 48.86], [179.9, -45.0], [10.0, -89.5]])
    out = run_embedding(enc, S.ArraySource(pts), tmp_path / "o", progress=False)
    path = next(out.glob("part-*.parquet"))
    t = pq.read_table(path)
    xy = np.array([_decode(b) for b in t.column("geometry").to_pylist()])
    assert np.array_equal(xy, pts)  # x = lon, y = lat
    assert np.array_equal(t.column("lon").to_numpy(), pts[:, 0]) and np.array_equal(t.column("lat").to_numpy(), pts[:, 1])
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    col = geo["columns"][geo["primary_column"]]
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Point"]
    assert "crs" not in col  # absent = OGC:CRS84 (lon, lat), what the coordinates are
    assert set(col) <= {"encoding", "geometry_types", "crs", "orientation", "edges", "bbox", "epoch", "covering"}


def test_geoparquet_in_web_mercator_is_reprojected(tmp_path):
    """A GeoParquet input in EPSG:3857 (metres) is reprojected to lon/lat with pyproj, not read as
    degrees; a file with an undefined CRS is refused, naming the fix."""
    pyproj = pytest.importorskip("pyproj")
    pa = pytest.importorskip("pyarrow")
    lonlat = np.array([[-120.5, 47.25], [2.35, 48.86], [151.2, -33.9]])
    to_m = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    x, y = to_m.transform(lonlat[:, 0], lonlat[:, 1])
    wkb = [struct.pack("<BIdd", 1, 1, a, b) for a, b in zip(x, y)]
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"],
                                    "crs": pyproj.CRS("EPSG:3857").to_json_dict()}}}
    table = pa.table({"geometry": pa.array(wkb, pa.binary())}).replace_schema_metadata({b"geo": json.dumps(geo)})
    src = tmp_path / "m.parquet"
    pq.write_table(table, src)
    source = S.TableSource(src)
    chunk = next(source.chunks())
    assert np.allclose(np.stack([chunk.lon, chunk.lat], 1), lonlat, atol=1e-9)
    assert source.describe()["crs"] == "EPSG:3857"
    geo["columns"]["geometry"]["crs"] = None
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo)}), tmp_path / "u.parquet")
    with pytest.raises(ValueError, match="CRS is undefined"):
        S.TableSource(tmp_path / "u.parquet")

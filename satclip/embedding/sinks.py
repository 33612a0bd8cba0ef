"""Output sinks for the streaming embedder. Each writes one source chunk at a time, so that a
chunk is either fully on disk or (after a crash) redone on resume.

* ``ParquetSink``: a directory of ``part-XXXXXX.parquet`` files, one per chunk, each written
  to a temporary dot-name and renamed. Columns ``id`` (int64, or the input's id column as it
  is), ``lon``, ``lat`` (float64), ``geometry`` (WKB point), ``embedding``
  (``FixedSizeList<float16|float32|int8>[D]``, plus ``embedding_scale`` float32 for int8) and
  the input columns asked for (``keep_cols``); GeoParquet ``geo`` metadata and the
  model/version in the file metadata.
* ``NpySink``: ``embeddings.npy`` (``[N, D]`` memmap), ``ids.npy`` and ``lonlat.npy``, preallocated;
  chunk ``i`` fills rows ``[i * chunk_points, ...)``.
* ``ZarrSink``: a Zarr group. For a full lat/lon grid, ``embedding [nlat, nlon, D]`` with
  ``lat``/``lon`` coordinate arrays; otherwise ``embedding [N, D]`` chunked like the source,
  with ``id``, ``lon``, ``lat`` arrays.

int8 output stores one float32 scale per point beside the codes (``embedding_scale``; the npy
layout's ``scales.npy``): ``embedding ~= code * scale``, ``scale = max|e| / 127`` of that
point, so the error is at most half a step, ``scale / 2``, per component.

Every sink's ``write`` returns the chunk's record for the manifest (rows; the file size for
Parquet, whose pages carry their own CRC-32; the CRC-32 of the stored values for npy and Zarr),
and ``check(chunk_index, start, record, full)`` tells whether that chunk is still intact on
disk: quickly (sizes, structure) or, with ``full``, by reading it back against its checksums
(``satclip embed --verify``). A write that fails (disk full)
leaves no partial shard behind.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from .sources import Chunk, cell_centres

FORMATS = ("parquet", "npy", "zarr")
# Zarr fill values: a cell no chunk has written yet reads as NaN (float embeddings, int8 scales)
# or as the int8 code -128, which quantize_int8 never produces (codes are clipped to +-127).
INT8_UNWRITTEN = -128


def quantize_int8(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8 codes and float32 scales (``emb ~= codes * scales[:, None]``)."""
    scale = np.abs(emb).max(axis=1).astype(np.float32) / 127.0
    scale[scale == 0] = 1.0
    codes = np.clip(np.rint(emb / scale[:, None]), -127, 127).astype(np.int8)
    return codes, scale


def quantize_int8_torch(emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`quantize_int8` on a tensor where it lives (the same codes and scales, bit for bit:
    float32 division, round half to even), so that a GPU sends 1 byte per value over the bus."""
    emb = emb.float()
    scale = emb.abs().amax(dim=1) / 127.0
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    codes = torch.round(emb / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return codes, scale


def _crc(*arrays) -> int:
    c = 0
    for a in arrays:
        if a is not None:
            c = zlib.crc32(np.ascontiguousarray(a).data, c)
    return c


def _integer_ids(chunk: Chunk, fmt: str) -> np.ndarray:
    ids = np.asarray(chunk.ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"--format {fmt} stores integer ids (int64); the id column holds {ids.dtype} values: "
                         "use --format parquet, which keeps any id type")
    return ids


def _wkb(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    buf = np.empty((len(lon), 21), dtype=np.uint8)
    buf[:, 0] = 1
    buf[:, 1:5] = np.frombuffer((1).to_bytes(4, "little"), dtype=np.uint8)
    buf[:, 5:13] = lon.astype("<f8").view(np.uint8).reshape(-1, 8)
    buf[:, 13:21] = lat.astype("<f8").view(np.uint8).reshape(-1, 8)
    return buf


class ParquetSink:
    def __init__(self, out: Path, dim: int, dtype: str, metadata: dict, **_):
        import pyarrow as pa  # noqa: F401  (fail early when missing)

        self.out, self.dim, self.dtype, self.metadata = out, dim, dtype, metadata
        self.out.mkdir(parents=True, exist_ok=True)
        self.created = False  # one file per chunk: nothing is shared between chunks

    def write(self, chunk: Chunk, emb: np.ndarray, scale: np.ndarray | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = len(chunk.ids)
        value_type = {"float16": pa.float16(), "int8": pa.int8()}.get(self.dtype, pa.float32())
        flat = pa.array(emb.reshape(-1), type=value_type)
        wkb = _wkb(chunk.lon, chunk.lat)
        geometry = pa.FixedSizeBinaryArray.from_buffers(pa.binary(21), n, [None, pa.py_buffer(wkb.tobytes())])
        ids = chunk.ids if isinstance(chunk.ids, (pa.Array, pa.ChunkedArray)) else pa.array(chunk.ids)
        table = pa.table({
            "id": ids.cast(pa.int64()) if pa.types.is_integer(ids.type) else ids,
            "lon": pa.array(chunk.lon, pa.float64()),
            "lat": pa.array(chunk.lat, pa.float64()),
            "geometry": geometry.cast(pa.binary()),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, self.dim),
            **({"embedding_scale": pa.array(scale, pa.float32())} if scale is not None else {}),
            **(chunk.extra or {}),
        })
        geo = {"version": "1.1.0", "primary_column": "geometry",
               "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}}}
        meta = {b"geo": json.dumps(geo).encode(), b"satclip": json.dumps(self.metadata).encode()}
        table = table.replace_schema_metadata(meta)
        final = self.out / f"part-{chunk.index:06d}.parquet"
        # a dot name: Parquet readers (pyarrow datasets, DuckDB, Spark) skip it if a crash leaves it
        tmp = final.with_name("." + final.name + ".tmp")
        # Embeddings are noise to a compressor and to dictionary encoding: skipping both (and the
        # embedding column's statistics) cuts the write's CPU time, CPU the encoder needs.
        try:
            # Page checksums (CRC-32, computed by Arrow in C++ as it writes) let --verify check
            # every data page on reading; the manifest keeps the row count and the file size.
            pq.write_table(table, tmp, compression="none", use_dictionary=["id"],
                           write_statistics=["id", "lon", "lat"], write_page_checksum=True)
            size = tmp.stat().st_size
            os.replace(tmp, final)
        except OSError:
            tmp.unlink(missing_ok=True)  # no partial shard left behind (disk full, ...)
            raise
        return {"rows": n, "bytes": size}

    def check(self, index: int, start: int, record: dict, full: bool) -> bool:
        import pyarrow.parquet as pq

        path = self.out / f"part-{index:06d}.parquet"
        try:
            if path.stat().st_size != record["bytes"]:
                return False
            return not full or pq.read_table(path, page_checksum_verification=True).num_rows == record["rows"]
        except (OSError, KeyError, ValueError):  # pyarrow raises OSError/ArrowInvalid on a bad page
            return False

    def close(self) -> None:
        pass


class NpySink:
    """``embeddings.npy [N, D]``, ``ids.npy [N]``, ``lonlat.npy [N, 2]`` (and ``scales.npy [N]``
    for int8) as preallocated memmaps. An output whose files are not all there and readable (a
    run killed while creating them) is created anew: ``created`` tells the runner that no chunk
    of it can be trusted."""

    def __init__(self, out: Path, dim: int, dtype: str, n: int, chunk_points: int, **_):
        self.out, self.chunk_points = out, chunk_points
        self.out.mkdir(parents=True, exist_ok=True)
        specs = {"embeddings.npy": (dtype, (n, dim)), "ids.npy": (np.int64, (n,)), "lonlat.npy": (np.float64, (n, 2))}
        if dtype == "int8":
            specs["scales.npy"] = (np.float32, (n,))
        open_mm = np.lib.format.open_memmap
        arrays = None
        if all((out / name).exists() for name in specs):
            try:
                arrays = {name: open_mm(out / name, mode="r+") for name in specs}
            except (OSError, ValueError):  # a header cut short by a crash while creating it
                arrays = None
            if arrays is not None and any(a.shape != specs[k][1] or a.dtype != np.dtype(specs[k][0])
                                          for k, a in arrays.items()):
                raise ValueError(f"{out}: the .npy files do not have the shapes and dtypes of this run "
                                 f"({ {k: (str(np.dtype(d)), sh) for k, (d, sh) in specs.items()} }); "
                                 "use --overwrite to start again")
        self.created = arrays is None
        if arrays is None:
            arrays = {}
            for name, (dt, shape) in specs.items():
                arrays[name] = open_mm(out / name, mode="w+", dtype=dt, shape=shape)
        self.emb, self.ids, self.lonlat = arrays["embeddings.npy"], arrays["ids.npy"], arrays["lonlat.npy"]
        self.scales = arrays.get("scales.npy")
        self.arrays = list(arrays.values())

    def write(self, chunk: Chunk, emb: np.ndarray, scale: np.ndarray | None = None) -> dict:
        s = chunk.start
        e = s + len(chunk.ids)
        ids = _integer_ids(chunk, "npy")
        self.emb[s:e] = emb
        if self.scales is not None:
            self.scales[s:e] = scale
        self.ids[s:e] = ids
        self.lonlat[s:e, 0] = chunk.lon
        self.lonlat[s:e, 1] = chunk.lat
        for a in self.arrays:
            a.flush()
        return {"rows": e - s, "crc32": _crc(self.emb[s:e], None if self.scales is None else self.scales[s:e])}

    def check(self, index: int, start: int, record: dict, full: bool) -> bool:
        # the files' sizes were checked when they were opened (a short file does not map)
        if not full:
            return True
        e = start + record["rows"]
        return _crc(self.emb[start:e], None if self.scales is None else self.scales[start:e]) == record["crc32"]

    def close(self) -> None:
        for a in self.arrays:
            a.flush()


# WGS 84 (EPSG:4326), the coordinates' reference system, for CF readers (xarray) and the GDAL
# family (rioxarray, odc-geo), which read it from the grid-mapping variable ``spatial_ref``.
WGS84_WKT = ('GEOGCRS["WGS 84",ENSEMBLE["World Geodetic System 1984 ensemble",MEMBER["World Geodetic System 1984 '
             '(Transit)"],MEMBER["World Geodetic System 1984 (G730)"],MEMBER["World Geodetic System 1984 (G873)"],'
             'MEMBER["World Geodetic System 1984 (G1150)"],MEMBER["World Geodetic System 1984 (G1674)"],'
             'MEMBER["World Geodetic System 1984 (G1762)"],MEMBER["World Geodetic System 1984 (G2139)"],'
             'ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]],ENSEMBLEACCURACY[2.0]],'
             'PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],CS[ellipsoidal,2],'
             'AXIS["geodetic latitude (Lat)",north,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],'
             'AXIS["geodetic longitude (Lon)",east,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],'
             'USAGE[SCOPE["Horizontal component of 3D system."],AREA["World."],BBOX[-90,-180,90,180]],ID["EPSG",4326]]')
CRS_ATTRS = {"grid_mapping_name": "latitude_longitude", "longitude_of_prime_meridian": 0.0,
             "semi_major_axis": 6378137.0, "inverse_flattening": 298.257223563, "crs_wkt": WGS84_WKT,
             "spatial_ref": WGS84_WKT, "epsg_code": "EPSG:4326"}
LAT_ATTRS = {"standard_name": "latitude", "long_name": "latitude of the cell centre", "units": "degrees_north",
             "axis": "Y"}
LON_ATTRS = {"standard_name": "longitude", "long_name": "longitude of the cell centre", "units": "degrees_east",
             "axis": "X"}


class ZarrSink:
    """A Zarr v3 group that xarray opens as it is (``xr.open_zarr(out)``): every array has
    ``dimension_names``, the metadata is consolidated, the coordinates carry CF attributes and
    units, and ``spatial_ref`` the CRS (WGS 84) for rioxarray / odc. Full lat/lon grid
    (``grid_shape = (nlat, nlon)``): ``embedding (lat, lon, embedding_dim)`` chunked by whole rows,
    with ``lat (lat)`` and ``lon (lon)`` coordinates (cell centres, exact decimals); the source's
    chunks must then hold whole grid rows (the runner aligns them). Otherwise (a table, HEALPix,
    H3, a land-only grid): ``embedding (point, embedding_dim)`` with ``id``, ``lon``, ``lat`` along
    ``point`` (CF ``coordinates``). int8 adds ``embedding_scale``.

    Cells no chunk has written read as NaN (float embeddings and scales) or as the int8 code
    -128 (:data:`INT8_UNWRITTEN`, never a real code), never as an embedding. The embedding is
    stored uncompressed (compressing float noise costs the encoder's CPU and saves little); the
    coordinates are small. Its chunks are whole shards already (a grid's rows of one source
    chunk), so no sharding codec is needed. The model and encoder settings are in the group's
    ``satclip`` attribute."""

    def __init__(self, out: Path, dim: int, dtype: str, n: int, chunk_points: int, metadata: dict,
                 grid_shape=None, **_):
        try:
            import zarr
        except ImportError:
            raise ImportError("--format zarr needs `pip install zarr`") from None
        self.grid = tuple(grid_shape) if grid_shape else None
        layout = "grid" if self.grid else "flat"
        # mode "a", never "w": "w" empties the whole directory, the run's manifest included
        self.root = zarr.open_group(str(out), mode="a", zarr_format=3)
        arrays = self._arrays(dim, dtype, n, chunk_points)
        have = dict(self.root.arrays())
        # The group's "layout" attribute is written last, so it marks a completely created output.
        self.created = not (self.root.attrs.get("layout") == layout and all(
            name in have and have[name].shape == spec["shape"] and have[name].dtype == np.dtype(spec["dtype"])
            for name, spec in arrays.items()))
        if not self.created:
            return
        for name, spec in arrays.items():
            data = spec.pop("data", None)
            a = self.root.create_array(name, overwrite=True, **spec)
            if data is not None:
                a[...] = data
        self.root.attrs.update({"satclip": metadata, "layout": layout, "Conventions": "CF-1.11",
                                "title": "SatCLIP location embeddings"})
        import warnings
        with warnings.catch_warnings():  # zarr notes that consolidation is not in the v3 spec yet
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(str(out))  # final from here on: the writes add data only

    def _arrays(self, dim: int, dtype: str, n: int, chunk_points: int) -> dict:
        """name -> create_array arguments (and ``data`` for the coordinate arrays)."""
        fill = INT8_UNWRITTEN if dtype == "int8" else np.nan
        emb_attrs = {"long_name": "SatCLIP location embedding", "grid_mapping": "spatial_ref"}
        if dtype == "int8":
            emb_attrs["comment"] = ("int8 codes: embedding = code * embedding_scale; code -128 marks a cell no "
                                    "chunk has written")
        out = {"spatial_ref": dict(shape=(), dtype="int32", fill_value=0, attributes=CRS_ATTRS,
                                   dimension_names=[], data=np.int32(0))}
        if self.grid:
            nlat, nlon = self.grid
            if chunk_points % nlon:
                raise ValueError(f"grid Zarr output needs chunks of whole rows ({nlon} cells), got {chunk_points}")
            rows = min(chunk_points // nlon, nlat)
            step = 180.0 / nlat
            out["embedding"] = dict(shape=(nlat, nlon, dim), chunks=(rows, nlon, dim), dtype=dtype, compressors=None,
                                    fill_value=fill, dimension_names=["lat", "lon", "embedding_dim"],
                                    attributes=emb_attrs)
            if dtype == "int8":
                out["embedding_scale"] = dict(shape=(nlat, nlon), chunks=(rows, nlon), dtype="float32",
                                              fill_value=np.nan, dimension_names=["lat", "lon"],
                                              attributes={"long_name": "int8 scale", "grid_mapping": "spatial_ref"})
            out["lat"] = dict(shape=(nlat,), dtype="float64", data=cell_centres(-90.0, step, nlat),
                              dimension_names=["lat"], attributes=LAT_ATTRS)
            out["lon"] = dict(shape=(nlon,), dtype="float64", data=cell_centres(-180.0, step, nlon),
                              dimension_names=["lon"], attributes=LON_ATTRS)
            return out
        c = min(chunk_points, max(n, 1))
        emb_attrs = {**emb_attrs, "coordinates": "id lon lat"}
        out["embedding"] = dict(shape=(n, dim), chunks=(c, dim), dtype=dtype, compressors=None, fill_value=fill,
                                dimension_names=["point", "embedding_dim"], attributes=emb_attrs)
        if dtype == "int8":
            out["embedding_scale"] = dict(shape=(n,), chunks=(c,), dtype="float32", fill_value=np.nan,
                                          dimension_names=["point"],
                                          attributes={"long_name": "int8 scale", "coordinates": "id lon lat"})
        out["id"] = dict(shape=(n,), chunks=(c,), dtype="int64", dimension_names=["point"],
                         attributes={"long_name": "point id (input id, row number or cell index)"})
        out["lon"] = dict(shape=(n,), chunks=(c,), dtype="float64", dimension_names=["point"],
                          attributes={**LON_ATTRS, "long_name": "longitude"})
        out["lat"] = dict(shape=(n,), chunks=(c,), dtype="float64", dimension_names=["point"],
                          attributes={**LAT_ATTRS, "long_name": "latitude"})
        return out

    def write(self, chunk: Chunk, emb: np.ndarray, scale: np.ndarray | None = None) -> dict:
        s = chunk.start
        e = s + len(chunk.ids)
        record = {"rows": e - s, "crc32": _crc(emb, scale)}
        if self.grid:
            nlon = self.grid[1]
            self.root["embedding"][s // nlon:e // nlon] = emb.reshape(-1, nlon, emb.shape[1])
            if scale is not None:
                self.root["embedding_scale"][s // nlon:e // nlon] = scale.reshape(-1, nlon)
            return record
        ids = _integer_ids(chunk, "zarr")
        self.root["embedding"][s:e] = emb
        if scale is not None:
            self.root["embedding_scale"][s:e] = scale
        self.root["id"][s:e] = ids
        self.root["lon"][s:e] = chunk.lon
        self.root["lat"][s:e] = chunk.lat
        return record

    def _rows(self, s: int, e: int):
        if self.grid:
            nlon = self.grid[1]
            emb = self.root["embedding"][s // nlon:e // nlon]
            scale = self.root["embedding_scale"][s // nlon:e // nlon] if "embedding_scale" in self.root else None
            return emb, scale
        scale = self.root["embedding_scale"][s:e] if "embedding_scale" in self.root else None
        return self.root["embedding"][s:e], scale

    def check(self, index: int, start: int, record: dict, full: bool) -> bool:
        # a missing Zarr chunk reads back as zeros, so only reading tells (full)
        return not full or _crc(*self._rows(start, start + record["rows"])) == record["crc32"]

    def close(self) -> None:
        pass


def make_sink(fmt: str, **kw):
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {FORMATS}")
    return {"parquet": ParquetSink, "npy": NpySink, "zarr": ZarrSink}[fmt](**kw)

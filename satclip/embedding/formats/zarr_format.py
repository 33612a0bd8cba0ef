"""Zarr v3: a group that xarray opens as it is (``xr.open_zarr(out)``): every array has
``dimension_names``, the metadata is consolidated, the coordinates carry CF attributes and
units, and ``spatial_ref`` the CRS (WGS 84) for rioxarray / odc.

* Full lat/lon grid (``grid_shape = (nlat, nlon)``): ``embedding (lat, lon, embedding_dim)``
  chunked by whole rows, with ``lat (lat)`` and ``lon (lon)`` coordinates (cell centres, exact
  decimals); the source's chunks hold whole grid rows (the runner aligns them), so source chunk
  ``i`` is Zarr chunk ``i``.
* Otherwise (a table, HEALPix, H3, a land-only grid): ``embedding (point, embedding_dim)``
  chunked like the source, with ``id``, ``lon``, ``lat`` along ``point`` (CF ``coordinates``).
* int8 adds ``embedding_scale``.

Cells no chunk has written read as NaN (float embeddings and scales) or as the int8 code -128
(:data:`INT8_UNWRITTEN`, never a real code), never as an embedding. The embedding is stored
uncompressed (compressing float noise costs the encoder's CPU and saves little) and written
without zarr's check for chunks equal to the fill value (a pass over every value for nothing: an
embedding never is). Zarr writes each chunk file atomically (a temporary name renamed); the writer
then fsyncs it, and notes its directories, before the chunk is recorded. The model and encoder
settings are in the group's ``satclip`` attribute.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..stored import INT8_FORMULA, Converted
from ..durable import BlockFile, SyncBatch, replace_durably
from ..products import zarr_attributes
from ..sources import Chunk, cell_centres
from .checksum import digest, matches
from .base import Block, Capabilities, OutputFormat, Writer, WriterSpec, integer_ids

# Zarr fill values: a cell no chunk has written yet reads as NaN (float embeddings, int8 scales)
# or as the int8 code -128, which the int8 conversion never produces (codes are clipped to +-127).
INT8_UNWRITTEN = -128
BLOCK_ROWS = 65536

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
_NO_FILL_CHECK = {"write_empty_chunks": True}
# Chunk files named c.0.0.0 side by side in the array's folder (zarr v3's default key encoding
# with the "." separator), not c/0/0/0 in a folder per index: a chunk then adds one entry to one
# existing folder, so making it durable is one folder fsync per batch, not three new folders each.
FLAT_KEYS = {"name": "default", "separator": "."}


def _divisor(n: int, most: int) -> int:
    """The largest divisor of ``n`` not above ``most`` (a shard holds whole inner chunks)."""
    return next(d for d in range(min(n, most), 0, -1) if n % d == 0)


def _plain_bytes(arr) -> bool:
    """Whether a chunk file of ``arr`` is its values' bytes as they are: only the ``bytes`` codec
    (little-endian), a regular chunk grid, the default chunk key encoding, no storage transformer."""
    from zarr.codecs import BytesCodec
    from zarr.core.chunk_grids import RegularChunkGrid
    from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding

    m = arr.metadata
    codecs = tuple(m.codecs)
    return (len(codecs) == 1 and isinstance(codecs[0], BytesCodec) and str(getattr(codecs[0].endian, "value", ""))
            in ("little", "") and isinstance(m.chunk_grid, RegularChunkGrid)
            and isinstance(m.chunk_key_encoding, DefaultChunkKeyEncoding) and not m.storage_transformers)


class ZarrWriter(Writer):
    def __init__(self, spec: WriterSpec, dirty: SyncBatch):
        import zarr

        self.folder, self.dirty, self.spec = spec.folder, dirty, spec
        self.grid = tuple(spec.grid_shape) if spec.grid_shape else None
        self._locks: dict = {}
        self._locks_lock = threading.Lock()
        layout = "grid" if self.grid else "flat"
        # mode "a", never "w": "w" empties the whole directory
        self.root = zarr.open_group(str(spec.folder), mode="a", zarr_format=3)
        arrays = self._arrays(spec)
        have = dict(self.root.arrays())
        # The group's "layout" attribute is written last, so it marks a completely created output.
        self.created = not (self.root.attrs.get("layout") == layout and all(
            name in have and have[name].shape == a["shape"] and have[name].dtype == np.dtype(a["dtype"])
            for name, a in arrays.items()))
        if self.created:
            for name, a in arrays.items():
                data = a.pop("data", None)
                arr = self.root.create_array(name, overwrite=True, **a)
                if data is not None:
                    arr[...] = data
            meta = dict(spec.metadata, **({"int8": INT8_FORMULA} if spec.dtype == "int8" else {}))
            conventions = zarr_attributes(spec.product, self.grid) if spec.product else {}
            self.root.attrs.update({**conventions, "satclip": meta, "layout": layout, "Conventions": "CF-1.11",
                                    "title": "SatCLIP location embeddings"})
            with warnings.catch_warnings():  # zarr notes that consolidation is not in the v3 spec yet
                warnings.simplefilter("ignore")
                zarr.consolidate_metadata(str(spec.folder))  # final from here on: the writes add data only
            self._sync_tree()
        # the arrays, opened once (with the no-fill-check config: it is not stored in the metadata)
        self.arrays = {name: zarr.open_array(str(spec.folder / name), mode="r+", config=_NO_FILL_CHECK)
                       for name in ("embedding", "embedding_scale", "id", "lon", "lat") if name in arrays}
        # arrays whose chunk files are the plain bytes (no compressor, filter or sharding): written directly
        self._raw = {name: _plain_bytes(a) for name, a in self.arrays.items()}

    def _sync_tree(self) -> None:
        """fsyncs every file and directory of a newly created group (its metadata and coordinates)."""
        for dirpath, _, files in os.walk(self.folder):
            for f in files:
                fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            self.dirty.add(dirpath)
        self.dirty.add(self.folder.parent)

    @staticmethod
    def _storage(spec: WriterSpec, chunk: tuple, inner: tuple) -> dict:
        """How the embedding array is stored: one uncompressed chunk per source chunk (written
        directly, as fast as the disk), or with ``compression="zstd"`` Blosc-Zstd (byte shuffle)
        in small inner chunks (a reader fetching a window decompresses 64 x 64 cells, not a band
        of whole rows), each source chunk one shard of them (the sharding codec: one file per
        source chunk, written whole, never read back and merged)."""
        if spec.compression != "zstd":
            return {"chunks": chunk, "compressors": None}
        from zarr.codecs import BloscCodec

        return {"shards": chunk, "chunks": inner,
                "compressors": BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")}

    def _arrays(self, spec: WriterSpec) -> dict:
        """name -> create_array arguments (and ``data`` for the coordinate arrays)."""
        dim, dtype, n, chunk_points = spec.dim, spec.dtype, spec.n, spec.chunk_points
        fill = INT8_UNWRITTEN if dtype == "int8" else np.nan
        emb_attrs = {"long_name": "SatCLIP location embedding", "grid_mapping": "spatial_ref"}
        if dtype == "int8":
            emb_attrs["comment"] = (f"int8 codes: {INT8_FORMULA}; code -128 marks a cell no chunk has written")
        out = {"spatial_ref": dict(shape=(), dtype="int32", fill_value=0, attributes=CRS_ATTRS,
                                   dimension_names=[], data=np.int32(0))}
        if self.grid:
            nlat, nlon = self.grid
            if chunk_points % nlon:
                raise ValueError(f"grid Zarr output needs chunks of whole rows ({nlon} cells), got {chunk_points}")
            rows = min(chunk_points // nlon, nlat)
            step = 180.0 / nlat
            out["embedding"] = dict(shape=(nlat, nlon, dim), dtype=dtype, chunk_key_encoding=FLAT_KEYS,
                                    **self._storage(spec, (rows, nlon, dim), (_divisor(rows, 64), _divisor(nlon, 64), dim)),
                                    fill_value=fill, dimension_names=["lat", "lon", "embedding_dim"],
                                    attributes=emb_attrs)
            if dtype == "int8":
                out["embedding_scale"] = dict(shape=(nlat, nlon), chunks=(rows, nlon), dtype="float32",
                                              chunk_key_encoding=FLAT_KEYS,
                                              fill_value=np.nan, dimension_names=["lat", "lon"],
                                              attributes={"long_name": "int8 scale", "grid_mapping": "spatial_ref"})
            out["lat"] = dict(shape=(nlat,), dtype="float64", data=cell_centres(-90.0, step, nlat),
                              dimension_names=["lat"], attributes=LAT_ATTRS)
            out["lon"] = dict(shape=(nlon,), dtype="float64", data=cell_centres(-180.0, step, nlon),
                              dimension_names=["lon"], attributes=LON_ATTRS)
            return out
        c = min(chunk_points, max(n, 1))
        emb_attrs = {**emb_attrs, "coordinates": "id lon lat"}
        out["embedding"] = dict(shape=(n, dim), dtype=dtype, fill_value=fill, chunk_key_encoding=FLAT_KEYS,
                                **self._storage(spec, (c, dim), (_divisor(c, 4096), dim)),
                                dimension_names=["point", "embedding_dim"], attributes=emb_attrs)
        if dtype == "int8":
            out["embedding_scale"] = dict(shape=(n,), chunks=(c,), dtype="float32", fill_value=np.nan,
                                          chunk_key_encoding=FLAT_KEYS,
                                          dimension_names=["point"],
                                          attributes={"long_name": "int8 scale", "coordinates": "id lon lat"})
        out["id"] = dict(shape=(n,), chunks=(c,), dtype="int64", dimension_names=["point"],
                         chunk_key_encoding=FLAT_KEYS,
                         attributes={"long_name": "point id (input id, row number or cell index)"})
        out["lon"] = dict(shape=(n,), chunks=(c,), dtype="float64", dimension_names=["point"],
                          chunk_key_encoding=FLAT_KEYS, attributes={**LON_ATTRS, "long_name": "longitude"})
        out["lat"] = dict(shape=(n,), chunks=(c,), dtype="float64", dimension_names=["point"],
                          chunk_key_encoding=FLAT_KEYS, attributes={**LAT_ATTRS, "long_name": "latitude"})
        return out

    def _region(self, chunk: Chunk) -> slice:
        s, e = chunk.start, chunk.start + len(chunk.lon)
        return slice(s // self.grid[1], e // self.grid[1]) if self.grid else slice(s, e)

    def _put(self, name: str, region: slice, values: np.ndarray) -> None:
        """Writes ``values`` at ``region`` (along the first axis) of array ``name`` durably: data
        fsynced, new directory entries noted in ``dirty``."""
        if region.stop <= region.start:
            return  # an empty chunk (a land-only grid's rows of sea) writes nothing
        arr = self.arrays[name]
        step = arr.metadata.chunk_grid.chunk_shape[0]
        whole = region.start % step == 0 and (region.stop % step == 0 or region.stop == arr.shape[0])
        if whole and self._raw[name]:
            for c in range(region.start // step, (region.stop - 1) // step + 1):
                lo = c * step - region.start
                self._write_chunk_file(name, c, values[lo:lo + step])
            return
        touched = range(region.start // step, (region.stop - 1) // step + 1)
        # A source whose chunks vary in size (a land-only grid) shares a Zarr chunk between
        # neighbours, which zarr writes by reading, merging and rewriting it: two writer threads on
        # neighbours must take turns on that chunk, or one would undo the other's rows.
        with self._chunk_locks(name, touched):
            arr[region] = values
        rest = (0,) * (arr.ndim - 1)
        for c in touched:
            path = self.folder / name / arr.metadata.encode_chunk_key((c, *rest))
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            self.dirty.add(*[p for p in path.parents if p.is_relative_to(self.folder / name)])

    def _write_chunk_file(self, name: str, c: int, values: np.ndarray) -> None:
        """Chunk ``c`` of an uncompressed array, written as the file zarr would write (the chunk's
        values, C order, little-endian; an edge chunk padded with the fill value) and as fast as
        the disk takes it: zarr's own path copies the 16 MB of a chunk three times through its
        event loop (10 to 60 ms against 6 ms for the plain write here). Written to a dot-name,
        fsynced, renamed (readers never see a partial chunk), the directory noted; whole pages go
        with O_DIRECT (:class:`satclip.embedding.durable.BlockFile`)."""
        arr = self.arrays[name]
        shape = arr.metadata.chunk_grid.chunk_shape
        dtype = arr.dtype.newbyteorder("<")
        if values.shape != tuple(shape):
            full = np.full(shape, arr.metadata.fill_value, dtype=dtype)
            full[:values.shape[0]] = values
            values = full
        values = np.ascontiguousarray(values, dtype=dtype)
        path = self.folder / name / arr.metadata.encode_chunk_key((c, *(0,) * (arr.ndim - 1)))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.spec.temporary(path)
        f = BlockFile(tmp, create=True)
        try:
            if values.nbytes:
                f.pwrite(values, 0)
            f.fsync()
        finally:
            f.close()
        replace_durably(tmp, path, self.dirty)
        self.dirty.add(*[p for p in path.parents if p.is_relative_to(self.folder / name)])

    @contextlib.contextmanager
    def _chunk_locks(self, name: str, chunks: range):
        with self._locks_lock:
            locks = [self._locks.setdefault((name, c), threading.Lock()) for c in chunks]
        for lock in locks:  # always in increasing order: no deadlock between neighbours
            lock.acquire()
        try:
            yield
        finally:
            for lock in locks:
                lock.release()

    def write_embedding_rows(self, chunk: Chunk, data: Converted) -> None:
        values = data.values
        if self.grid:
            values = values.reshape(-1, self.grid[1], values.shape[1])
        self._put("embedding", self._region(chunk), values)

    def write(self, chunk: Chunk, data: Converted) -> dict:
        region = self._region(chunk)
        record = {"rows": len(chunk.lon), **digest(data.values, data.scale)}
        ids = None if self.grid else integer_ids(chunk, "zarr")
        self.write_embedding_rows(chunk, data)
        if data.scale is not None:
            self._put("embedding_scale", region, data.scale.reshape(-1, self.grid[1]) if self.grid else data.scale)
        if not self.grid:
            self._put("id", region, ids)
            self._put("lon", region, np.asarray(chunk.lon, np.float64))
            self._put("lat", region, np.asarray(chunk.lat, np.float64))
        return record

    def _rows(self, region: slice):
        emb = self.arrays["embedding"][region]
        scale = self.arrays["embedding_scale"][region] if "embedding_scale" in self.arrays else None
        return emb, scale

    def check(self, index: int, start: int, record: dict, full: bool) -> bool:
        # a chunk file that is missing reads as the fill value, so only reading tells (full)
        if not full:
            return True
        end = start + record["rows"]
        region = slice(start // self.grid[1], end // self.grid[1]) if self.grid else slice(start, end)
        return matches(record, *self._rows(region))


class ZarrFormat(OutputFormat):
    name = "zarr"
    requires = "zarr"
    capabilities = Capabilities(grid_layout=True, needs_row_count=True, chunked_rows=True, compression=True)
    own_files = ("zarr.json", "embedding", "embedding_scale", "id", "lon", "lat", "spatial_ref")
    unwritten_rows = "NaN embeddings (int8: code -128, scale NaN)"
    help = "a Zarr v3 group (xarray); a full grid as [lat, lon, D]"

    def bytes_per_row(self, dtype: str, dim: int) -> int:
        # the grid layout keeps coordinates per row and column only; a point layout 24 bytes a row
        return dim * np.dtype(dtype).itemsize + (4 if dtype == "int8" else 0) + 24

    def open_writer(self, spec: WriterSpec, dirty: SyncBatch) -> Writer:
        return ZarrWriter(spec, dirty)

    def iter_blocks(self, folder: Path, man: dict):
        import zarr

        root = zarr.open_group(str(folder), mode="r")
        has_scale = "embedding_scale" in root
        if root.attrs.get("layout") == "grid":
            nlat, nlon, dim = root["embedding"].shape
            lons, lats = root["lon"][:], root["lat"][:]
            rows = max(1, BLOCK_ROWS // nlon)
            for r in range(0, nlat, rows):
                emb = root["embedding"][r:r + rows]
                k = emb.shape[0]
                scale = root["embedding_scale"][r:r + rows].reshape(-1) if has_scale else None
                lon, lat = np.meshgrid(lons, lats[r:r + k])
                yield Block(np.arange(r * nlon, (r + k) * nlon), lon.reshape(-1), lat.reshape(-1),
                            emb.reshape(-1, dim), scale)
            return
        n = root["embedding"].shape[0]
        for s in range(0, n, BLOCK_ROWS):
            e = s + BLOCK_ROWS
            yield Block(root["id"][s:e], root["lon"][s:e], root["lat"][s:e], root["embedding"][s:e],
                        root["embedding_scale"][s:e] if has_scale else None)

"""Cloud-Optimised GeoTIFF of a full lat/lon grid: ``embeddings.tif``, one band per embedding
dimension (named ``emb_000`` ...), rows top-down (north first), EPSG:4326 with the geotransform of
the cell edges, nodata NaN (float) or -128 (int8, never a code), internal tiles of 64 x 64 cells
and overviews (nearest: each overview pixel is a real embedding). int8 adds
``embedding_scale.tif`` (one float32 band): ``embedding = code * embedding_scale``. GDAL, QGIS,
rasterio, rioxarray and torchgeo's ``RasterDataset`` open it.

A COG is written whole (its directories sit before its tiles), so the run writes an intermediate
first: the grid's rows in the source's order, south-up, in a raw ``.npy``-layout file
(``.embeddings.raw.npy``: rows at their offset with O_DIRECT, synced before the manifest records
them: resumable like the npy format), and when every chunk is recorded the writer's
:meth:`CogWriter.finalize` makes the COG from it: each level (the full grid and the
nearest-neighbour overviews, north-up) as a tiled, pixel-interleaved GeoTIFF written 64 grid rows
at a time, then the COG driver lays them out in one file through a VRT that names the overviews,
then the intermediate is deleted. Pixel
interleaving keeps a cell's whole embedding in one tile (one read per point for
``rasterio.sample``). float16 is stored as half floats (GDAL's ``NBITS=16``; GDAL reads them as
float32).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..durable import BlockFile, SyncBatch, fsync_path, replace_durably
from ..sources import Chunk, cell_centres
from ..stored import INT8_FORMULA, Converted
from .base import Block, Capabilities, OutputFormat, Writer, WriterSpec
from .checksum import digest, matches
from .npy import _header, _read_rows, create_npy

COG = "embeddings.tif"
SCALE_COG = "embedding_scale.tif"
RAW = ".embeddings.raw.npy"
RAW_SCALE = ".embedding_scale.raw.npy"
BLOCKSIZE = 64
INT8_NODATA = -128
_GDAL_TYPES = {"float32": "Float32", "int8": "Int8"}


def _raw_dtype(dtype: str) -> np.dtype:
    # GDAL 3.10 reads no float16 raster: float16 values are kept as (exact) float32 until the COG
    return np.dtype(np.int8 if dtype == "int8" else np.float32)


def _overview_factors(nrows: int, ncols: int) -> list[int]:
    """2, 4, 8 ... until the smallest overview fits one tile (what the COG driver's AUTO makes)."""
    factors, f = [], 2
    while max(nrows, ncols) / (f // 2) > BLOCKSIZE:
        factors.append(f)
        f *= 2
    return factors


def _north_up_rows(raw: Path, nrows: int, ncols: int, f: int, top: int, k: int) -> np.ndarray:
    """Rows [top, top + k) of the level-``f`` image, north first, as ``[bands, k, ncols / f]``: the
    raw file holds the full grid south-up; level f keeps every f-th cell, the one at f // 2 in each
    f x f block (nearest neighbour: each overview cell is a real cell's embedding)."""
    shape, dt, offset = _header(raw)
    bands = int(np.prod(shape[1:], dtype=np.int64))
    if f == 1:
        south = nrows - top - k
        rows = _read_rows(raw, shape, dt, offset, south * ncols, k * ncols).reshape(k, ncols, bands)[::-1]
    else:
        full = [(top + i) * f + f // 2 for i in range(k)]  # north-up rows of the full grid
        rows = np.stack([_read_rows(raw, shape, dt, offset, (nrows - 1 - r) * ncols, ncols).reshape(ncols, bands)
                         [f // 2::f] for r in full])
    return np.ascontiguousarray(rows.transpose(2, 0, 1))


def _write_level(raw: Path, path: Path, nrows: int, ncols: int, f: int) -> None:
    """The level-``f`` image as a tiled, pixel-interleaved GeoTIFF, 64 rows (one row of tiles) at
    a time, all bands per call: each byte of the intermediate is read once."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    shape, dt, _ = _header(raw)
    h, w = len(range(f // 2, nrows, f)), len(range(f // 2, ncols, f))
    step = 180.0 / nrows * f
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=int(np.prod(shape[1:])), dtype=dt.name,
                       crs="EPSG:4326", transform=from_origin(-180.0, 90.0, step, step), tiled=True, blockxsize=BLOCKSIZE, blockysize=BLOCKSIZE, interleave="pixel",
                       BIGTIFF="IF_SAFER") as dst:
        for top in range(0, h, BLOCKSIZE):
            k = min(BLOCKSIZE, h - top)
            dst.write(_north_up_rows(raw, nrows, ncols, f, top, k), window=Window(0, top, w, k))


def _vrt(levels: dict, nrows: int, ncols: int, dtype: np.dtype, names, nodata) -> str:
    """A VRT of the full-resolution image with the other levels as its overviews (``<Overview>``),
    so the COG driver copies them (OVERVIEWS=FORCE_USE_EXISTING) instead of computing them: GDAL
    builds overviews of a pixel-interleaved image one band at a time, reading every tile once per
    band (256 times; 30-140 s for the 0.25-degree grid, against about 1 s here)."""
    step = 180.0 / nrows
    nd = f"<NoDataValue>{'nan' if np.isnan(nodata) else int(nodata)}</NoDataValue>" if nodata is not None else ""
    parts = [f'<VRTDataset rasterXSize="{ncols}" rasterYSize="{nrows}"><SRS>EPSG:4326</SRS>'
             f"<GeoTransform>-180, {step!r}, 0, 90, 0, {-step!r}</GeoTransform>"]
    for b, name in enumerate(names, start=1):
        parts.append(f'<VRTRasterBand dataType="{_GDAL_TYPES[dtype.name]}" band="{b}"><Description>{name}</Description>'
                     f'{nd}<SimpleSource><SourceFilename relativeToVRT="0">{levels[1]}</SourceFilename>'
                     f"<SourceBand>{b}</SourceBand></SimpleSource>")
        parts += [f'<Overview><SourceFilename relativeToVRT="0">{path}</SourceFilename><SourceBand>{b}</SourceBand>'
                  "</Overview>" for f, path in levels.items() if f > 1]
        parts.append("</VRTRasterBand>")
    parts.append("</VRTDataset>")
    return "".join(parts)


class CogWriter(Writer):
    def __init__(self, spec: WriterSpec, dirty: SyncBatch):
        import rasterio  # noqa: F401  (fail early when missing)

        self.spec, self.dirty, self.folder = spec, dirty, spec.folder
        self.nrows, self.ncols = spec.grid_shape
        self.dim, self.dtype = spec.dim, spec.dtype
        self.raw_dtype = _raw_dtype(spec.dtype)
        spec.folder.mkdir(parents=True, exist_ok=True)
        self.files = {RAW: (self.raw_dtype, (self.nrows * self.ncols, self.dim))}
        if spec.dtype == "int8":
            self.files[RAW_SCALE] = (np.dtype(np.float32), (self.nrows * self.ncols,))
        self.finished = (spec.folder / COG).exists() and not (spec.folder / RAW).exists()
        self.created = not self.finished and not all(self._intact(name) for name in self.files)
        if self.created:
            for name, (dt, shape) in self.files.items():
                create_npy(spec.folder / name, dt, shape)
            dirty.add(spec.folder)
        self.blocks = {} if self.finished else {name: BlockFile(spec.folder / name) for name in self.files}

    def _intact(self, name: str) -> bool:
        dt, shape = self.files[name]
        try:
            have_shape, have_dt, offset = _header(self.folder / name)
        except (OSError, ValueError):
            return False
        return have_shape == shape and have_dt == dt and (self.folder / name).stat().st_size == \
            offset + dt.itemsize * int(np.prod(shape, dtype=np.int64))

    def _put(self, name: str, start: int, values: np.ndarray) -> None:
        dt, shape = self.files[name]
        row = dt.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        values = np.ascontiguousarray(values, dtype=dt)
        if values.nbytes:
            self.blocks[name].pwrite(values, _header(self.folder / name)[2] + start * row)

    def write_embedding_rows(self, chunk: Chunk, data: Converted) -> None:
        self._put(RAW, chunk.start, data.values)

    def write(self, chunk: Chunk, data: Converted) -> dict:
        if self.finished:
            raise RuntimeError(f"{self.folder / COG} is finished; redo the output with --overwrite")
        self.write_embedding_rows(chunk, data)
        if data.scale is not None:
            self._put(RAW_SCALE, chunk.start, data.scale)
        self.dirty.add_file(*(self.folder / name for name in self.files))
        return {"rows": len(chunk.lon), **digest(data.values, data.scale)}

    def _rows(self, start: int, count: int):
        """Rows [start, start + count) of the grid (south-up order) as stored: from the
        intermediate before :meth:`finalize`, from the COG after."""
        if not self.finished:
            emb = _read_rows(self.folder / RAW, *_header(self.folder / RAW), start, count)
            scale = (_read_rows(self.folder / RAW_SCALE, *_header(self.folder / RAW_SCALE), start, count)
                     if RAW_SCALE in self.files else None)
            return emb, scale
        return read_cog_rows(self.folder, start, count, self.ncols)

    def check(self, index: int, start: int, record: dict, full: bool) -> bool:
        if not full:
            return True
        emb, scale = self._rows(start, record["rows"])
        if self.dtype == "float16":
            emb = emb.astype(np.float16)
        return matches(record, emb, scale)

    def finalize(self) -> None:
        """The COG (and the scales' COG) from the intermediate, in one pass; then the intermediate
        is deleted. Each COG is written to a temporary name, fsynced and renamed."""
        if self.finished:
            return
        import rasterio.shutil

        for f in self.blocks.values():
            f.fsync()
        options = dict(BLOCKSIZE=BLOCKSIZE, OVERVIEWS="FORCE_USE_EXISTING", INTERLEAVE="PIXEL",
                       BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS", COMPRESS="NONE")  # the driver's own default is LZW
        if self.spec.compression == "zstd":
            options.update(COMPRESS="ZSTD", LEVEL=3, PREDICTOR="YES")
        targets = [(RAW, COG, [f"emb_{b:03d}" for b in range(self.dim)],
                   dict(options, NBITS=16) if self.dtype == "float16" else options,
                   INT8_NODATA if self.dtype == "int8" else float("nan"))]
        if RAW_SCALE in self.files:
            targets.append((RAW_SCALE, SCALE_COG, ["embedding_scale"], options, float("nan")))
        tags = dict(satclip_dtype=self.dtype, **({"int8": INT8_FORMULA} if self.dtype == "int8" else {}))
        for raw, final, names, opts, nodata in targets:
            levels = {f: self.spec.temporary(self.folder / f"{final}.level{f}.tif")
                      for f in [1] + _overview_factors(self.nrows, self.ncols)}
            for f, path in levels.items():
                _write_level(self.folder / raw, path, self.nrows, self.ncols, f)
            vrt = self.spec.temporary(self.folder / (final + ".vrt"))
            vrt.write_text(_vrt(levels, self.nrows, self.ncols, self.files[raw][0], names, nodata))
            with rasterio.open(vrt, "r+") as src:  # a VRT takes its tags in place
                src.update_tags(**tags)
            tmp = self.spec.temporary(self.folder / final)
            rasterio.shutil.copy(vrt, tmp, driver="COG", **opts)  # the COG layout: IFDs first, overviews kept
            fsync_path(tmp)
            replace_durably(tmp, self.folder / final, self.dirty)
            for path in [vrt, *levels.values()]:
                path.unlink()
        self.dirty.sync()
        self.close()
        for raw in self.files:
            (self.folder / raw).unlink()
        fsync_path(self.folder)
        self.finished = True

    def close(self) -> None:
        for f in self.blocks.values():
            f.close()
        self.blocks = {}


def read_cog_rows(folder: Path, start: int, count: int, ncols: int):
    """Grid rows (south-up, ``start`` and ``count`` in cells, whole rows) of a finished COG output
    as ``([count, D], scale or None)``."""
    import rasterio
    from rasterio.windows import Window

    r0, k = start // ncols, count // ncols
    out = []
    for name in (COG, SCALE_COG):
        if not (folder / name).exists():
            out.append(None)
            continue
        with rasterio.open(folder / name) as ds:
            top = ds.height - (r0 + k)
            data = ds.read(window=Window(0, top, ds.width, k))  # [bands, k, ncols], north first
        data = data[:, ::-1, :].transpose(1, 2, 0).reshape(k * ncols, -1)
        out.append(data if name == COG else data.reshape(-1))
    return out[0], out[1]


class CogFormat(OutputFormat):
    name = "cog"
    requires = "rasterio"
    capabilities = Capabilities(grid_layout=True, needs_row_count=True, compression=True, grid_only=True)
    own_files = (COG, SCALE_COG, RAW, RAW_SCALE)
    unwritten_rows = "zeros (the intermediate, before the COG is made)"
    help = "a Cloud-Optimised GeoTIFF of a full grid, a band per dimension (GDAL, QGIS, rioxarray, torchgeo)"
    # ZSTD with GDAL's predictor: neighbouring cells' embeddings are alike (0.25-degree grid, the
    # bundled model: 0.62 / 0.53 / 0.24 of the size for float32 / float16 / int8, at -1% to +7%
    # writer time; benchmarks/results/product-sizes.md)
    default_compression = "zstd"

    def bytes_per_row(self, dtype: str, dim: int) -> int:
        # the intermediate and the COG exist together while the COG is made
        stored = {"float32": 4, "float16": 2, "int8": 1}[dtype]
        return dim * (stored + _raw_dtype(dtype).itemsize) + (8 if dtype == "int8" else 0)

    def open_writer(self, spec: WriterSpec, dirty: SyncBatch) -> Writer:
        return CogWriter(spec, dirty)

    def iter_blocks(self, folder: Path, man: dict):
        src = man["source"]
        ncols, nrows = int(round(360 / src["step"])), int(round(180 / src["step"]))
        lons, lats = cell_centres(-180.0, src["step"], ncols), cell_centres(-90.0, src["step"], nrows)
        rows = max(1, 65536 // ncols)
        finished = (folder / COG).exists() and not (folder / RAW).exists()
        for r in range(0, nrows, rows):
            k = min(rows, nrows - r)
            if finished:
                emb, scale = read_cog_rows(folder, r * ncols, k * ncols, ncols)
                if man.get("dtype") == "int8":
                    emb = emb.astype(np.int8)
            else:
                emb = _read_rows(folder / RAW, *_header(folder / RAW), r * ncols, k * ncols)
                scale = (_read_rows(folder / RAW_SCALE, *_header(folder / RAW_SCALE), r * ncols, k * ncols)
                         if (folder / RAW_SCALE).exists() else None)
            lon, lat = np.meshgrid(lons, lats[r:r + k])
            yield Block(np.arange(r * ncols, (r + k) * ncols), lon.reshape(-1), lat.reshape(-1), emb, scale)

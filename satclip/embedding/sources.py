"""Point sources for the streaming embedder: each yields ``Chunk``s of (ids, lon, lat), chunk
by chunk, and never materialises the whole set.

A source is deterministic: chunk ``i`` always holds the same rows, which is what makes a
killed run resumable (the runner skips the chunks already on disk). ``describe()`` returns
what identifies the source in the output's manifest, so a resume against other inputs is
refused.

Coordinates are always degrees, lon first. Grids yield cell centres.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import SettingError


@dataclass
class Chunk:
    index: int            # chunk number, 0-based, in source order
    start: int            # row offset of the first point
    ids: np.ndarray       # [n]: int64 row numbers, grid cell ids, HEALPix/H3 indices; or a table's id column as it is
    lon: np.ndarray       # float64 [n], degrees
    lat: np.ndarray       # float64 [n], degrees
    extra: dict | None = None  # input columns carried to the output (name -> pyarrow array), tables only
    payload: object = None     # what an encoder with encode_chunk() reads besides lon/lat (image tensors)
    skipped: list | None = None  # inputs of this chunk left out (unreadable files), recorded in the manifest


class Source:
    """``chunk_points``: points per chunk, the unit that is read, encoded, written as one shard and
    resumed (:mod:`satclip.options` names the other sizes).

    What a source is, declared (the runner asks these, never probes): ``keep_cols``, the input
    columns it carries beside the embedding; ``id_col``, its id column (None: ids are row numbers
    or cell indices); ``grid_shape``, ``(nlat, nlon)`` for a full lat/lon grid yielded row by row
    from the south; ``skips_rows``, whether it may leave inputs out (then named by the setting
    ``skip_setting``); ``fixed_chunks``, whether every chunk but the last holds exactly
    ``chunk_points`` rows; ``row_noun``, what one of its rows is, for messages."""
    chunk_points: int = 65536
    keep_cols: tuple | list = ()
    id_col: str | None = None
    grid_shape: tuple | None = None
    on_invalid: str = "fail"
    skip_setting: str = "on_invalid"
    row_noun: str = "input row"

    @property
    def fixed_chunks(self) -> bool:
        return not self.skips_rows

    @property
    def skips_rows(self) -> bool:
        return self.on_invalid == "skip"

    def _set_chunk_points(self, chunk_points: int, chunk_size: int | None = None) -> None:
        if chunk_size is not None:  # the keyword's name before 0.2
            from ..options import renamed
            renamed("chunk_size=", "chunk_points=", type(self).__name__)
            chunk_points = chunk_size
        if isinstance(chunk_points, bool) or not isinstance(chunk_points, int) or chunk_points < 1:
            raise ValueError(f"chunk_points must be a positive int, got {chunk_points!r}")
        self.chunk_points = chunk_points

    def with_chunk_points(self, chunk_points: int) -> "Source":
        """A copy of this source with other chunks (this one is left as it is)."""
        import copy
        other = copy.copy(self)
        other._set_chunk_points(chunk_points)
        return other

    def __len__(self) -> int:  # number of points, when known up front
        raise NotImplementedError

    def chunks(self, skip: set[int] = frozenset()) -> Iterator[Chunk]:
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError

    @property
    def num_chunks(self) -> int:
        """Chunks of the source; an empty source has one empty chunk, so that its output is a
        dataset with the full schema and no rows (readers find a file, not nothing)."""
        return max(1, (len(self) + self.chunk_points - 1) // self.chunk_points)

    def empty_chunk(self) -> Chunk:
        """Chunk 0 of an empty source."""
        return Chunk(0, 0, np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    def chunk_start(self, index: int) -> int:
        """Row offset of chunk ``index`` (without reading it)."""
        return index * self.chunk_points


ON_INVALID = ("fail", "skip")
LON_NAMES = ("lon", "longitude", "lng", "x")
LAT_NAMES = ("lat", "latitude", "y")


def pick_column(names, candidates):
    """The first of ``candidates`` among ``names`` (case-insensitive), or None."""
    low = {str(n).lower(): n for n in names}
    return next((low[c] for c in candidates if c in low), None)


def invalid_coords(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Rows that cannot be embedded: NaN or infinite coordinates, or a latitude outside [-90, 90]."""
    return ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lat) > 90)


def describe_invalid(lon: float, lat: float) -> str:
    if not (np.isfinite(lon) and np.isfinite(lat)):
        return f"NaN or inf coordinate (lon={lon}, lat={lat})"
    return f"latitude outside [-90, 90] ({lat}; is the column order lat, lon? SatCLIP is lon first)"


def _check_coords(lon: np.ndarray, lat: np.ndarray, where: str, rows=None, ids=None) -> None:
    """Refuses the first invalid row, named by its row number in the input (0-based, header not
    counted) and its id when there is an id column."""
    bad = invalid_coords(lon, lat)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        who = f" (id {ids[i]})" if ids is not None else ""
        raise SettingError(f"{where}: row {i if rows is None else int(rows[i])}{who}: "
                           f"{describe_invalid(lon[i], lat[i])}; "
                           "fix or drop it, or pass {on_invalid=skip} to leave such rows out")


class ArraySource(Source):
    """An in-memory ``[N, 2]`` array of (lon, lat) degrees (``order="latlon"`` swaps columns)."""

    def __init__(self, points, order: str = "lonlat", chunk_points: int = 65536, *, chunk_size: int | None = None):
        if order not in ("lonlat", "latlon"):
            raise ValueError(f"order must be 'lonlat' or 'latlon', got {order!r}")
        arr = np.asarray(points, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"points must have shape [N, 2], got {list(arr.shape)}")
        self.lon, self.lat = (arr[:, 0], arr[:, 1]) if order == "lonlat" else (arr[:, 1], arr[:, 0])
        _check_coords(self.lon, self.lat, "points")
        self._set_chunk_points(chunk_points, chunk_size)

    def __len__(self) -> int:
        return len(self.lon)

    def chunks(self, skip=frozenset()):
        if len(self) == 0 and 0 not in skip:
            yield self.empty_chunk()
        for i, s in enumerate(range(0, len(self), self.chunk_points)):
            if i in skip:
                continue
            e = min(len(self), s + self.chunk_points)
            yield Chunk(i, s, np.arange(s, e, dtype=np.int64), self.lon[s:e], self.lat[s:e])

    def describe(self) -> dict:
        h = hashlib.sha256(np.ascontiguousarray(self.lon).tobytes() + np.ascontiguousarray(self.lat).tobytes())
        return {"type": "array", "n": len(self), "sha256": h.hexdigest()}


def cell_centres(start: float, step: float, n: int) -> np.ndarray:
    """``start + (i + 0.5) * step`` for ``i < n``, each the float nearest to the decimal value (for
    a 0.1-degree grid: 89.95, not 89.95000000000002), so that a user's ``WHERE lat = 89.95`` or
    ``sel(lat=89.95)`` finds the cell: computed in units of the half step's last decimal, an
    integer, then divided once (exact to the nearest float). A step with no short decimal form
    (1/3 degree) keeps the plain formula."""
    from decimal import Decimal

    centres = start + (np.arange(n, dtype=np.float64) + 0.5) * step
    decimals = -(Decimal(repr(float(step))) / 2).normalize().as_tuple().exponent
    if 0 <= decimals <= 12 and (abs(start) + n * step) * 10.0 ** decimals < 2 ** 52:
        centres = np.rint(centres * 10.0 ** decimals) / 10.0 ** decimals
    return centres


class GridSource(Source):
    """Regular lat/lon grid of cell centres at ``step`` degrees, row by row from the south;
    ``land_only`` keeps cells whose centre is on land (``global-land-mask``). Cell id =
    ``row * ncols + col``."""

    def __init__(self, step: float, land_only: bool = False, chunk_points: int = 65536, *, chunk_size: int | None = None):
        if not (0 < step <= 90) or not math.isfinite(step):
            raise ValueError(f"grid step must be in (0, 90] degrees, got {step}")
        self.step, self.land_only = float(step), land_only
        self._set_chunk_points(chunk_points, chunk_size)
        self.ncols = int(round(360.0 / step))
        self.nrows = int(round(180.0 / step))
        if abs(self.ncols * step - 360) > 1e-9 or abs(self.nrows * step - 180) > 1e-9:
            raise ValueError(f"grid step {step} must divide 180 degrees evenly")
        if self.nrows * self.ncols > 2 ** 62:
            raise ValueError(f"grid step {step} gives {self.nrows * self.ncols:.3g} cells, more than any output can hold "
                             f"(over {self.nrows * self.ncols * 130:.2g} bytes even as int8 with D = 128); choose a "
                             "coarser --grid")
        if land_only:
            try:
                from global_land_mask import globe
            except ImportError:
                raise ImportError("--land-only needs `pip install global-land-mask`") from None
            self._globe = globe
        self._counts = None
        self._centres = None

    @property
    def lat_centres(self) -> np.ndarray:
        """``[nrows]`` cell-centre latitudes, south to north (exact decimals)."""
        return self._both_centres()[0]

    @property
    def lon_centres(self) -> np.ndarray:
        """``[ncols]`` cell-centre longitudes, west to east (exact decimals)."""
        return self._both_centres()[1]

    def _both_centres(self):
        if self._centres is None:  # on first use: a run refused for its size never builds them
            self._centres = (cell_centres(-90.0, self.step, self.nrows), cell_centres(-180.0, self.step, self.ncols))
        return self._centres

    def _cells(self, lo: int, hi: int):
        ids = np.arange(lo, hi, dtype=np.int64)
        row, col = np.divmod(ids, self.ncols)
        return ids, self.lon_centres[col], self.lat_centres[row]

    def __len__(self) -> int:
        if not self.land_only:
            return self.nrows * self.ncols
        return int(self._land_counts().sum())

    def _row_blocks(self):
        rows_per = max(1, self.chunk_points // self.ncols)
        return [(r0, min(self.nrows, r0 + rows_per)) for r0 in range(0, self.nrows, rows_per)]

    def _land_counts(self) -> np.ndarray:
        """Land cells per chunk (one pass over the mask, cached): gives every chunk its row
        offset, which the array formats need, without holding the grid."""
        if self._counts is None:
            counts = []
            for r0, r1 in self._row_blocks():
                _, lon, lat = self._cells(r0 * self.ncols, r1 * self.ncols)
                counts.append(int(self._globe.is_land(lat, lon).sum()))
            self._counts = np.array(counts, dtype=np.int64)
        return self._counts

    def _land_chunks(self, skip):
        # Land-only chunks hold the land cells of consecutive blocks of grid rows, so the
        # chunking is fixed by grid position.
        starts = np.concatenate([[0], np.cumsum(self._land_counts())[:-1]])
        for i, (r0, r1) in enumerate(self._row_blocks()):
            if i in skip:
                continue
            ids, lon, lat = self._cells(r0 * self.ncols, r1 * self.ncols)
            keep = self._globe.is_land(lat, lon)
            yield Chunk(i, int(starts[i]), ids[keep], lon[keep], lat[keep])

    @property
    def num_chunks(self) -> int:
        return len(self._row_blocks()) if self.land_only else super().num_chunks

    def chunk_start(self, index: int) -> int:
        if not self.land_only:
            return super().chunk_start(index)
        return int(self._land_counts()[:index].sum())

    @property
    def grid_shape(self):
        return None if self.land_only else (self.nrows, self.ncols)

    @property
    def fixed_chunks(self) -> bool:
        return not self.land_only  # a land-only chunk holds the land cells of its grid rows

    def chunks(self, skip=frozenset()):
        if self.land_only:
            yield from self._land_chunks(skip)
            return
        n = self.nrows * self.ncols
        for i, s in enumerate(range(0, n, self.chunk_points)):
            if i not in skip:
                ids, lon, lat = self._cells(s, min(n, s + self.chunk_points))
                yield Chunk(i, s, ids, lon, lat)

    def describe(self) -> dict:
        return {"type": "grid", "step": self.step, "land_only": self.land_only}


class HealpixSource(Source):
    """All HEALPix pixel centres at ``nside`` (``nest`` or ring order); needs ``healpy``."""

    def __init__(self, nside: int, nest: bool = False, chunk_points: int = 65536, *, chunk_size: int | None = None):
        try:
            import healpy
        except ImportError:
            raise ImportError("--healpix needs `pip install healpy`") from None
        if not healpy.isnsideok(nside, nest=nest):
            raise ValueError(f"invalid HEALPix nside {nside}" + (" (nest needs a power of 2)" if nest else ""))
        self.hp, self.nside, self.nest = healpy, int(nside), nest
        self._set_chunk_points(chunk_points, chunk_size)

    def __len__(self) -> int:
        return 12 * self.nside * self.nside

    def chunks(self, skip=frozenset()):
        n = len(self)
        for i, s in enumerate(range(0, n, self.chunk_points)):
            if i in skip:
                continue
            ids = np.arange(s, min(n, s + self.chunk_points), dtype=np.int64)
            lon, lat = self.hp.pix2ang(self.nside, ids, nest=self.nest, lonlat=True)
            lon = np.where(lon > 180, lon - 360, lon)
            yield Chunk(i, s, ids, lon, lat)

    def describe(self) -> dict:
        return {"type": "healpix", "nside": self.nside, "nest": self.nest}


class H3Source(Source):
    """All H3 cell centres at resolution ``res`` (``h3`` >= 4), in the order of the res-0 cells
    and their children; id = the H3 index as int64."""

    def __init__(self, res: int, chunk_points: int = 65536, *, chunk_size: int | None = None):
        try:
            import h3
        except ImportError:
            raise ImportError("--h3 needs `pip install h3`") from None
        if not 0 <= res <= 15:
            raise ValueError(f"H3 resolution must be in [0, 15], got {res}")
        self.h3, self.res = h3, int(res)
        self._set_chunk_points(chunk_points, chunk_size)

    def __len__(self) -> int:
        return int(self.h3.get_num_cells(self.res))

    def _cells(self):
        for base in sorted(self.h3.get_res0_cells()):
            yield from sorted(self.h3.cell_to_children(base, self.res))

    def chunks(self, skip=frozenset()):
        buf, index, start = [], 0, 0
        for cell in self._cells():
            buf.append(cell)
            if len(buf) == self.chunk_points:
                if index not in skip:
                    yield self._chunk(index, start, buf)
                index, start, buf = index + 1, start + len(buf), []
        if buf and index not in skip:
            yield self._chunk(index, start, buf)

    def _chunk(self, index, start, cells):
        ll = np.array([self.h3.cell_to_latlng(c) for c in cells], dtype=np.float64)
        ids = np.array([self.h3.str_to_int(c) for c in cells], dtype=np.uint64).view(np.int64)
        return Chunk(index, start, ids, ll[:, 1], ll[:, 0])

    def describe(self) -> dict:
        return {"type": "h3", "res": self.res}


class TableSource(Source):
    """Points from a Parquet/GeoParquet or delimited text file, read in batches with pyarrow.

    Text files (``.csv``, ``.tsv``, ``.tab``, ``.txt``, also gzipped): the separator is ``sep``
    or, by default, read off the header line (the most frequent of ``,`` ``;`` tab ``|``; a
    UTF-8 byte-order mark is skipped), so a ``;``-separated export and a ``.tsv`` read as they are.
    ``sort="hilbert"``: the rows in the order of a Hilbert curve over their coordinates (nearby
    points in the same chunk, so a Parquet output's shards and row groups cover small extents that
    bbox filters skip); the table is then held in memory for the run. Ids stay the input's.

    Columns: ``lon_col``/``lat_col`` (defaults: the first of lon/longitude/x and lat/latitude/y
    present, case-insensitive) or, in GeoParquet, the point ``geometry`` column (WKB). ``id_col``
    is copied to the output as it is (any type; by default ids are row numbers); ``keep_cols``
    (names, or ``["*"]`` for every other column) are carried to the output beside the embedding.
    ``on_invalid``: a row with a NaN/inf coordinate or a latitude outside [-90, 90] stops the run
    naming its row (``"fail"``, default) or is left out and listed in the manifest (``"skip"``;
    Parquet output). Row numbers are 0-based, the header not counted.
    """

    def __init__(self, path, lon_col: str | None = None, lat_col: str | None = None, id_col: str | None = None,
                 chunk_points: int = 65536, keep_cols=(), *, on_invalid: str = "fail", sep: str | None = None,
                 sort: str | None = None, chunk_size: int | None = None):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError("reading tables needs `pip install pyarrow`") from None
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"points file not found: {self.path}")
        self._set_chunk_points(chunk_points, chunk_size)
        if on_invalid not in ON_INVALID:
            raise ValueError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
        self.id_col, self.on_invalid = id_col, on_invalid
        if sort not in (None, "hilbert"):
            raise SettingError("{sort} is not an order; expected 'hilbert' (or none: the input's order)", sort=sort)
        self.sort = sort
        self.kind = "csv" if _text_suffix(self.path) else "parquet"
        if sep is not None and (self.kind != "csv" or len(sep) != 1):
            raise SettingError(f"{self.path}: {{sep}} " + ("applies to text tables (.csv, .tsv)" if self.kind != "csv"
                               else "must be one character"), sep=sep)
        self.sep = (sep or _sniff_separator(self.path)) if self.kind == "csv" else None
        names = self._column_names()
        self.geometry = None
        self.lon_col = lon_col or pick_column(names, LON_NAMES)
        self.lat_col = lat_col or pick_column(names, LAT_NAMES)
        self.transformer = None  # to lon/lat, for a GeoParquet geometry in another CRS
        if (self.lon_col is None or self.lat_col is None) and "geometry" in names and self.kind == "parquet":
            self.geometry = "geometry"
            self.transformer, self.crs_name = _to_lonlat(self.path, self.geometry)
        elif self.lon_col is None or self.lat_col is None:
            raise SettingError(f"{self.path}: no lon/lat columns found among {names}; name them with "
                               "{lon_col=}/{lat_col=}")
        for c, setting in ((lon_col, "lon_col"), (lat_col, "lat_col"), (id_col, "id_col")):
            if c is not None and c not in names:
                raise SettingError(f"{self.path}: column {c!r} ({{{setting}=}}) not found among {names}")
        keep = list(keep_cols or ())
        self.left_out: list = []  # columns "all" does not carry (the output has its own of that name)
        if keep == ["*"]:
            used = {self.lon_col, self.lat_col, self.geometry, id_col}
            keep = [c for c in names if c not in used]
            self.left_out = [c for c in keep if c in OWN_COLUMNS]
            keep = [c for c in keep if c not in OWN_COLUMNS]
        missing = [c for c in keep if c not in names]
        if missing:
            raise SettingError(f"{self.path}: {{keep_cols=}} {missing} not found among {names}")
        clash = [c for c in keep if c in OWN_COLUMNS]
        if clash:
            raise SettingError(f"{self.path}: {{keep_cols=}} {clash} would clash with the output's own columns "
                               f"({', '.join(OWN_COLUMNS)})")
        self.keep_cols = keep
        self._n = None

    def _column_names(self):
        return self._schema().names

    def __len__(self) -> int:
        if self._n is None:
            if self.kind == "parquet":
                self._n = _parquet_file(self.path).metadata.num_rows
            else:
                self._n = sum(b.num_rows for b in self._batches())
        return self._n

    def _batches(self):
        cols = [self.geometry] if self.geometry else [self.lon_col, self.lat_col]
        if self.id_col:
            cols.append(self.id_col)
        cols += [c for c in self.keep_cols if c not in cols]
        if self.kind == "parquet":
            yield from _parquet_file(self.path).iter_batches(batch_size=self.chunk_points, columns=cols)
        else:
            import pyarrow.csv as pcsv
            opts = pcsv.ConvertOptions(include_columns=cols)
            with pcsv.open_csv(self.path, **self._csv_options(convert_options=opts)) as reader:
                yield from reader

    def _rebatched(self):
        """Tables of exactly chunk_points rows (the last one shorter), whatever the reader gives."""
        import pyarrow as pa
        pending, count = [], 0
        for b in self._batches():
            pending.append(pa.Table.from_batches([b]))
            count += b.num_rows
            while count >= self.chunk_points:
                t = pa.concat_tables(pending).combine_chunks()
                yield t.slice(0, self.chunk_points)
                rest = t.slice(self.chunk_points)
                pending, count = [rest], rest.num_rows
        if count:
            yield pa.concat_tables(pending)

    def empty_chunk(self) -> Chunk:
        """Chunk 0 of an empty table: no rows, the id and carried columns with the input's types."""
        import pyarrow as pa
        schema = self._schema()
        chunk = super().empty_chunk()
        chunk.extra = {c: pa.array([], type=schema.field(c).type) for c in self.keep_cols} or None
        if self.id_col:
            chunk.ids = pa.array([], type=schema.field(self.id_col).type)
        return chunk

    def _schema(self):
        if self.kind == "parquet":
            return _parquet_file(self.path).schema_arrow
        schema = self._csv_schema()
        if len(schema.names) == 1 and any(c in schema.names[0] for c in SEPARATORS if c != self.sep):
            raise SettingError(f"{self.path}: the header {schema.names[0]!r} reads as one column with the separator "
                               f"{self.sep!r}; give the file's separator with {{sep=}} (e.g. ';' or a tab)")
        return schema

    def _csv_options(self, **convert):
        import pyarrow.csv as pcsv
        return dict(parse_options=pcsv.ParseOptions(delimiter=self.sep),
                    read_options=pcsv.ReadOptions(block_size=1 << 22), **convert)

    def _csv_schema(self):
        import pyarrow as pa
        import pyarrow.csv as pcsv
        try:
            with pcsv.open_csv(self.path, **self._csv_options()) as r:
                return r.schema
        except pa.ArrowInvalid as exc:
            if self.path.stat().st_size == 0 or "Empty CSV" in str(exc):
                raise ValueError(f"{self.path}: empty file (no header line); a table of points needs a header with "
                                 "lon/lat columns (e.g. 'lon,lat') and one row per point") from None
            raise ValueError(f"{self.path}: not a readable CSV ({str(exc).splitlines()[0]})") from None

    def _floats(self, t, col: str, rows: np.ndarray) -> np.ndarray:
        """A coordinate column as float64; a value that is not a number is named by its row."""
        values = t.column(col).to_numpy(zero_copy_only=False)
        try:
            return values.astype(np.float64)
        except (TypeError, ValueError):
            for r, v in enumerate(values):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{self.path}: column {col!r}, row {int(rows[r])}: {v!r} is not a number "
                                     "(coordinates must be degrees)") from None
            raise

    def _coords(self, t, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) degrees of a table's rows (``rows``: their numbers in the input, for messages)."""
        if self.geometry:
            lon, lat = _wkb_points(t.column(self.geometry).to_numpy(zero_copy_only=False), str(self.path), rows)
            if self.transformer is not None:
                lon, lat = self.transformer.transform(lon, lat)
                lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
            return lon, lat
        return self._floats(t, self.lon_col, rows), self._floats(t, self.lat_col, rows)

    def chunks(self, skip=frozenset()):
        if len(self) == 0:
            if 0 not in skip:
                yield self.empty_chunk()
            return
        if self.sort == "hilbert":
            yield from self._sorted_chunks(skip)
            return
        start = 0
        for i, t in enumerate(self._rebatched()):
            if i not in skip:
                yield self._chunk(i, start, t, np.arange(start, start + t.num_rows, dtype=np.int64))
            start += t.num_rows

    def _sorted_chunks(self, skip):
        """Chunks of the rows in Hilbert-curve order of their coordinates: the whole table is read
        once (it is held in memory for the run), sorted, and chunk ``i`` takes the ``i``-th slice
        of that order, the same for every run of the same file."""
        import pyarrow as pa
        table = pa.Table.from_batches(list(self._batches())) if len(self) else None
        rows = np.arange(table.num_rows, dtype=np.int64)
        lon, lat = self._coords(table, rows)
        order = np.argsort(hilbert_index(np.nan_to_num(lon), np.nan_to_num(lat)), kind="stable")
        for i, s in enumerate(range(0, len(order), self.chunk_points)):
            if i not in skip:
                idx = order[s:s + self.chunk_points]
                yield self._chunk(i, s, table.take(idx), idx)

    def _chunk(self, i: int, start: int, t, rows: np.ndarray) -> Chunk:
        """Chunk ``i`` from table ``t`` of input rows ``rows`` (their numbers: the default ids)."""
        lon, lat = self._coords(t, rows)
        ids = t.column(self.id_col).combine_chunks() if self.id_col else rows
        extra = {c: t.column(c).combine_chunks() for c in self.keep_cols} or None
        bad = invalid_coords(lon, lat)
        skipped = None
        if bad.any():
            if self.on_invalid == "fail":
                _check_coords(lon, lat, str(self.path), rows, ids.to_pylist() if self.id_col else None)
            bad_rows = np.flatnonzero(bad)
            skipped = [f"row {int(rows[r])}" + (f" (id {ids[int(r)]})" if self.id_col else "") + ": "
                       + describe_invalid(lon[r], lat[r]) for r in bad_rows]
            keep = ~bad
            lon, lat = lon[keep], lat[keep]
            ids = ids.filter(keep) if self.id_col else ids[keep]
            extra = {c: a.filter(keep) for c, a in extra.items()} if extra else None
        return Chunk(i, start, ids, lon, lat, extra, skipped=skipped)

    def describe(self) -> dict:
        st = os.stat(self.path)
        return {"type": "table", "path": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                **({"crs": self.crs_name} if self.transformer is not None else {}),
                "lon_col": self.lon_col, "lat_col": self.lat_col, "geometry": self.geometry, "id_col": self.id_col,
                **({"keep_cols": self.keep_cols} if self.keep_cols else {}),
                **({"sep": self.sep} if self.sep not in (None, ",") else {}),
                **({"sort": self.sort} if self.sort else {}),
                **({"on_invalid": self.on_invalid} if self.on_invalid != "fail" else {})}


def hilbert_index(lon: np.ndarray, lat: np.ndarray, order: int = 16) -> np.ndarray:
    """The position of each (lon, lat) along a Hilbert curve of ``2**order`` cells a side over the
    lon/lat rectangle (the classic xy -> d walk, vectorised over points)."""
    n = 1 << order
    x = np.clip(((np.asarray(lon) + 180.0) / 360.0 * n).astype(np.int64), 0, n - 1)
    y = np.clip(((np.asarray(lat) + 90.0) / 180.0 * n).astype(np.int64), 0, n - 1)
    d = np.zeros(x.shape, np.int64)
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx  # rotate the quadrant so the curve continues
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        x, y = np.where(~ry, y, x), np.where(~ry, x, y)
        s >>= 1
    return d


OWN_COLUMNS = ("id", "lon", "lat", "geometry", "bbox", "embedding", "embedding_scale")  # the Parquet output's own
SEPARATORS = (",", ";", "\t", "|")
_TEXT_SUFFIXES = (".csv", ".tsv", ".tab", ".txt")


def _text_suffix(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) or name.endswith(s + ".gz") for s in _TEXT_SUFFIXES)


def _sniff_separator(path: Path) -> str:
    """The separator of a text table: tab for .tsv/.tab, else the most frequent of SEPARATORS in
    its header line (',' when none occurs)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".tab")):
        return "\t"
    import gzip
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            first = f.readline(1 << 16).decode("utf-8-sig", errors="replace")
    except OSError:
        return ","
    counts = {c: first.count(c) for c in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _parquet_file(path: Path):
    """``pq.ParquetFile(path)``, or a refusal naming the file when it is empty or not Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not a Parquet table of points")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]}); a text table needs "
                         "the suffix .csv or .tsv") from None


LONLAT_CRS = {("EPSG", "4326"), ("OGC", "CRS84"), ("OGC", "CRS:84"), ("EPSG", "4979"), ("OGC", "CRS84h")}


def _to_lonlat(path: Path, column: str):
    """``(transformer or None, CRS name)`` for a GeoParquet geometry column: None where it is in
    longitude/latitude already (no ``crs`` key means OGC:CRS84, GeoParquet's default); otherwise a
    pyproj transformer to longitude/latitude, or a refusal that names the CRS and the fix."""
    import json

    meta = _parquet_file(path).schema_arrow.metadata or {}
    if b"geo" not in meta:
        return None, "OGC:CRS84"
    col = json.loads(meta[b"geo"]).get("columns", {}).get(column, {})
    if "crs" not in col:
        return None, "OGC:CRS84"
    crs = col["crs"]
    if crs is None:
        raise SettingError(f"{path}: the geometry column's CRS is undefined (GeoParquet crs: null), so its "
                           "coordinates cannot be taken as degrees; write the file with its CRS, or give lon/lat "
                           "columns ({lon_col=}/{lat_col=})")
    ident = crs.get("id", {}) if isinstance(crs, dict) else {}
    key = (str(ident.get("authority", "")).upper(), str(ident.get("code", "")))
    name = f"{key[0]}:{key[1]}" if key[0] else (crs.get("name", "a custom CRS") if isinstance(crs, dict) else str(crs))
    if key in LONLAT_CRS:
        return None, name
    try:
        import pyproj
    except ImportError:
        raise SettingError(f"{path}: the geometry is in {name}, not longitude/latitude; `pip install pyproj` to have "
                           "it reprojected, or give lon/lat columns ({lon_col=}/{lat_col=})") from None
    source = pyproj.CRS.from_json_dict(crs) if isinstance(crs, dict) else pyproj.CRS.from_user_input(crs)
    return pyproj.Transformer.from_crs(source, "OGC:CRS84", always_xy=True), name


def _wkb_points(values, where: str, rows=None):
    """(lon, lat) of 2D WKB points (21 bytes: byte order, type 1, x, y); rows named by ``rows``."""
    lon = np.empty(len(values))
    lat = np.empty(len(values))
    for i, v in enumerate(values):
        b = bytes(v)
        if len(b) < 21:
            raise ValueError(f"{where}: geometry at row {i if rows is None else int(rows[i])} is not a WKB point")
        order = "<" if b[0] == 1 else ">"
        gtype = int.from_bytes(b[1:5], "little" if order == "<" else "big")
        if gtype % 1000 != 1:
            raise ValueError(f"{where}: geometry at row {i if rows is None else int(rows[i])} has WKB type {gtype}, "
                             "expected a point")
        lon[i], lat[i] = np.frombuffer(b[5:21], dtype=order + "f8")
    return lon, lat

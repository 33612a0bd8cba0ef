"""npy: ``embeddings.npy [N, D]``, ``ids.npy [N]`` (int64), ``lonlat.npy [N, 2]`` (float64) and,
for int8, ``scales.npy [N]`` (float32): preallocated at the start (sparse files of the final
size), chunk ``i`` filling rows ``[start_i, start_i + n_i)``. ``np.load(..., mmap_mode="r")``
reads any of them without loading it.

Rows go to disk with ``pwrite`` at their offset (not through a memory map: a mapped write
faults every page in before filling it, and the mapping's pages count in the process's memory),
whole pages with O_DIRECT (:class:`satclip.embedding.durable.BlockFile`: the header is padded to
a page, so a chunk of a multiple of 1,024 points starts page-aligned in every file);
the files are fdatasynced before the manifest records the chunks (once per batch of chunks, not
per chunk: four syncs of each chunk's four files cost more than its rows' write). Several writer
threads write different chunks at once; ``pwrite`` releases the GIL.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..stored import Converted
from ..durable import PAGE, BlockFile, SyncBatch
from ..sources import Chunk
from ..errors import SettingError
from .checksum import digest, matches
from .base import Block, Capabilities, OutputFormat, Writer, WriterSpec, integer_ids

BLOCK_ROWS = 65536  # rows per block when reading back


def _header(path: Path) -> tuple[tuple, np.dtype, int]:
    """``(shape, dtype, data offset)`` of an .npy file, from its header."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        version = fmt.read_magic(f)
        read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f"{path}: .npy format version {version}, not written by this package")
        shape, _, dtype = read(f)
        return tuple(shape), np.dtype(dtype), f.tell()


HEADER = PAGE  # bytes of header: the data starts page-aligned, so whole chunks can go with O_DIRECT


def create_npy(path: Path, dtype: np.dtype, shape: tuple) -> None:
    """A new .npy file of ``shape`` and ``dtype``: a version 1.0 header padded with spaces to
    ``HEADER`` bytes (any reader of the format reads it: the padding is the format's own), then
    the data area as a sparse file of its final size, fsynced."""
    header = repr({"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                   "shape": tuple(int(k) for k in shape)}).encode("latin1")
    body = header + b" " * (HEADER - 10 - len(header) - 1) + b"\n"
    magic = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little")
    with open(path, "wb") as f:
        f.write(magic + body)
        f.truncate(HEADER + np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64)))
        f.flush()
        os.fsync(f.fileno())


class NpyWriter(Writer):
    """An output whose files are not all there with the shapes, dtypes and sizes of this run (a
    run killed while creating them) is created anew: ``created`` tells the runner that no chunk of
    it can be trusted."""

    def __init__(self, spec: WriterSpec, dirty: SyncBatch):
        out, n, dim = spec.folder, spec.n, spec.dim
        out.mkdir(parents=True, exist_ok=True)
        self.specs = {"embeddings.npy": (np.dtype(spec.dtype), (n, dim)), "ids.npy": (np.dtype(np.int64), (n,)),
                      "lonlat.npy": (np.dtype(np.float64), (n, 2))}
        if spec.dtype == "int8":
            self.specs["scales.npy"] = (np.dtype(np.float32), (n,))
        self.folder, self.dirty = out, dirty
        self.created = not all(self._intact(name) for name in self.specs)
        if self.created:
            for name, (dt, shape) in self.specs.items():
                create_npy(out / name, dt, shape)
            dirty.add(out)
        self.offsets = {name: _header(out / name)[2] for name in self.specs}
        self.files = {name: BlockFile(out / name) for name in self.specs}

    def _intact(self, name: str) -> bool:
        path = self.folder / name
        dt, shape = self.specs[name]
        try:
            have_shape, have_dt, offset = _header(path)
        except (OSError, ValueError):  # missing, or a header cut short by a crash while creating it
            return False
        if have_shape != shape or have_dt != dt:
            raise SettingError(f"{self.folder}: {name} holds {have_dt} {list(have_shape)}, this run writes {dt} "
                               f"{list(shape)}; pass {{overwrite=True}} to start again")
        return path.stat().st_size == offset + dt.itemsize * int(np.prod(shape, dtype=np.int64))

    def _put(self, name: str, start: int, values: np.ndarray) -> None:
        dt, shape = self.specs[name]
        row = dt.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        values = np.ascontiguousarray(values, dtype=dt)
        if values.nbytes:
            self.files[name].pwrite(values, self.offsets[name] + start * row)

    def write_embedding_rows(self, chunk: Chunk, data: Converted) -> None:
        self._put("embeddings.npy", chunk.start, data.values)

    def write(self, chunk: Chunk, data: Converted) -> dict:
        ids = integer_ids(chunk, "npy")
        s, n = chunk.start, len(ids)
        self.write_embedding_rows(chunk, data)
        if data.scale is not None:
            self._put("scales.npy", s, data.scale)
        self._put("ids.npy", s, ids)
        self._put("lonlat.npy", s, np.stack([chunk.lon, chunk.lat], 1))
        self.dirty.add_file(*(self.folder / name for name in self.specs))  # fdatasynced before the chunk is recorded
        return {"rows": n, **digest(data.values, data.scale)}

    def check(self, index: int, start: int, record: dict, full: bool) -> bool:
        # the files' sizes were checked when they were opened
        if not full:
            return True
        e = start + record["rows"]
        emb = _read_rows(self.folder / "embeddings.npy", *_header(self.folder / "embeddings.npy"), start, e - start)
        scale = (_read_rows(self.folder / "scales.npy", *_header(self.folder / "scales.npy"), start, e - start)
                 if "scales.npy" in self.specs else None)
        return matches(record, emb, scale)

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files = {}


class NpyFormat(OutputFormat):
    name = "npy"
    capabilities = Capabilities(needs_row_count=True)
    own_files = ("embeddings.npy", "ids.npy", "lonlat.npy", "scales.npy")
    unwritten_rows = "zeros"
    help = "numpy arrays (embeddings.npy [N, D], ids.npy, lonlat.npy)"

    def bytes_per_row(self, dtype: str, dim: int) -> int:
        return dim * np.dtype(dtype).itemsize + (4 if dtype == "int8" else 0) + 24

    def open_writer(self, spec: WriterSpec, dirty: SyncBatch) -> Writer:
        return NpyWriter(spec, dirty)

    def iter_blocks(self, folder: Path, man: dict):
        names = ["ids.npy", "lonlat.npy", "embeddings.npy"] + (["scales.npy"] if (folder / "scales.npy").exists() else [])
        heads = {name: _header(folder / name) for name in names}
        n = heads["ids.npy"][0][0]
        for s in range(0, n, BLOCK_ROWS):
            k = min(BLOCK_ROWS, n - s)
            ids, ll, emb, *scale = (_read_rows(folder / name, *heads[name], s, k) for name in names)
            yield Block(ids, ll[:, 0], ll[:, 1], emb, scale[0] if scale else None)


def _read_rows(path: Path, shape: tuple, dtype: np.dtype, offset: int, start: int, count: int) -> np.ndarray:
    """Rows ``[start, start + count)`` of an .npy file, read (not mapped: a mapped file's pages would
    count in the process's memory as it reads a large output)."""
    row = int(np.prod(shape[1:], dtype=np.int64))
    with open(path, "rb") as f:
        out = np.fromfile(f, dtype=dtype, count=count * row, offset=offset + start * row * dtype.itemsize)
    return out.reshape((count, *shape[1:]))

"""What an output format is: one :class:`OutputFormat` subclass per format, knowing everything
about it (its name, the optional package it needs, what it can store, the files it owns, its size
per row, how to write, check and read it). The CLI, the runner, the run state and the reader all
ask the format; none of them names one.

A writer (``OutputFormat.open_writer``) is opened once per process over the output's data folder
and writes chunks, possibly from several threads at once (each chunk its own rows or file):

* ``write(chunk, converted) -> record``: the chunk's rows on stable storage (see
  :mod:`satclip.embedding.durable`: data fsynced; new directory entries noted in ``dirty``),
  returning the manifest's record (``rows`` and what ``check`` needs);
* ``check(index, start, record, full) -> bool``: is that chunk still intact (sizes; with ``full``
  every byte against its checksum);
* ``finalize()``: once every chunk is recorded (a COG is made from its intermediate here);
* ``close()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..stored import Converted
from ..durable import SyncBatch
from ..errors import SettingError
from ..sources import Chunk


@dataclass(frozen=True)
class Capabilities:
    """What a format can store besides ids, coordinates and embeddings."""
    extra_columns: bool = False    # input columns carried beside the embedding (--keep-cols)
    skipped_rows: bool = False     # rows left out (--on-invalid skip): no fixed row per input
    any_id_type: bool = False      # ids of any type as they are (else int64)
    grid_layout: bool = False      # a full lat/lon grid stored as [lat, lon, D]
    needs_row_count: bool = False  # the rows are preallocated: N must be known up front
    compression: bool = False      # can compress its embedding (compression="zstd")
    grid_only: bool = False        # stores a full lat/lon grid only (a raster)
    chunked_rows: bool = False     # rows stored in fixed-size storage chunks: sources whose chunks vary in
                                   # size share storage chunks between neighbours (one process must write them)


@dataclass(frozen=True)
class WriterSpec:
    """Everything a writer needs to create or reopen an output's data folder."""
    folder: Path                  # the data folder (the output itself, or its staging folder)
    dim: int
    dtype: str                    # "float32", "float16" or "int8"
    n: int | None                 # rows, where the format needs the count
    chunk_points: int
    grid_shape: tuple | None      # (nlat, nlon) where the format stores the grid as a grid
    metadata: dict = field(default_factory=dict)  # model, version, encoder settings (JSON)
    product: dict = field(default_factory=dict)   # the manifest's facts for products.py (conventions' metadata)
    compression: str | None = None               # "zstd", or None: stored as it is
    # where files are written before they are renamed into the folder: on the same file system,
    # outside the dataset, so that no reader (polars refuses a folder holding anything else) ever
    # meets a temporary a killed run left; None: dot-names in the folder itself
    scratch: Path | None = None

    def temporary(self, final: Path) -> Path:
        """The temporary name under which ``final`` is written before its rename."""
        if self.scratch is None:
            return final.with_name("." + final.name + ".tmp")
        rel = final.relative_to(self.folder)
        return self.scratch / ("." + "__".join(rel.parts) + ".tmp")


@dataclass
class Block:
    """A block of an output read back: ``values`` as stored (int8 codes with ``scale``)."""
    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    values: np.ndarray
    scale: np.ndarray | None = None


class Writer:
    created: bool = True  # the output's files were created by this writer (nothing earlier to trust)

    def write(self, chunk: Chunk, data: Converted) -> dict:
        raise NotImplementedError

    def check(self, index: int, start: int, record: dict, full: bool) -> bool:
        raise NotImplementedError

    def finalize(self) -> None:
        """Called once every chunk is recorded, before the output is committed: what a format
        makes of the whole (the COG from its intermediate). Idempotent."""

    def close(self) -> None:
        pass


class OutputFormat:
    name: str = ""
    requires: str | None = None         # the optional package it needs (pip name = module name)
    capabilities: Capabilities = Capabilities()
    own_files: tuple[str, ...] = ()     # glob patterns of its entries at the top of an output
    unwritten_rows: str | None = None   # how rows of unwritten chunks read in an incomplete output
    help: str = ""                      # one line for --format's help
    default_compression: str | None = None  # what compression=None means for this format (measured: product-sizes)

    def check_available(self) -> None:
        """Refuses, naming the package to install, when the format's dependency is missing."""
        if self.requires is None:
            return
        import importlib.util
        if importlib.util.find_spec(self.requires) is None:
            raise ImportError(f"--format {self.name} needs `pip install {self.requires}`")

    def bytes_per_row(self, dtype: str, dim: int) -> int:
        """About what one point takes on disk (embedding, int8 scale, id and coordinates)."""
        raise NotImplementedError

    def open_writer(self, spec: WriterSpec, dirty: SyncBatch) -> Writer:
        raise NotImplementedError

    def iter_blocks(self, folder: Path, man: dict) -> Iterator[Block]:
        """The rows of an output, in row order, as stored (bounded memory)."""
        raise NotImplementedError

    def owns(self, p: Path) -> bool:
        return any(p.match(pattern) for pattern in self.own_files)


def integer_ids(chunk: Chunk, fmt: str) -> np.ndarray:
    ids = np.asarray(chunk.ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise SettingError(f"{{fmt}} stores integer ids (int64); the id column holds {ids.dtype} values: "
                           "use {fmt=parquet}, which keeps any id type", fmt=fmt)
    return ids

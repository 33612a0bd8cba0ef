"""One embedding run, described by one object: :class:`EmbeddingJob` holds what was asked (the
encoder, the source, the output, its format and dtype, where to run, how to write) and is checked
once, when it is made; the runner, the executors and the manifest read it, and nothing checks
its settings again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import formats
from .convert import OUT_DTYPES
from .errors import SettingError
from .formats import OutputFormat
from .sources import Source

MAX_DEFAULT_WRITERS = {"cpu": 4, "cuda": 8}
COMPRESSIONS = (None, "none", "zstd")  # None: the format's default (OutputFormat.default_compression)


def default_writers(device: torch.device) -> int:
    """Writer threads by default: two per core (a writer spends part of each chunk waiting for
    the disk to confirm its fsync, so two keep a core busy: measured 0.44 -> 0.52 of the plain
    write with int8 npy output on 2 cores), at most 4 beside a CPU encoder (which needs the cores
    itself; a writer only runs while a chunk waits, so an idle one costs nothing) and 8 beside a
    GPU encoder (which leaves the cores to the writers). Each writer holds one chunk and its
    conversion buffers: memory grows with writers x chunk_points, not with N."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2 * cores, MAX_DEFAULT_WRITERS.get(device.type, 4)))


def model_fingerprint(encoder) -> str:
    """SHA-256 of an encoder's config and weights (float64 bytes): what identifies the model."""
    h = hashlib.sha256(json.dumps(encoder.config(), sort_keys=True).encode())
    for k, v in sorted(encoder.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()


def _formats_with(capability: str) -> str:
    """The ``{fmt=...}`` placeholder of the formats that have ``capability``."""
    names = [f.name for f in formats.all_formats() if getattr(f.capabilities, capability)]
    return " or ".join(f"{{fmt={n}}}" for n in names)


@dataclass(frozen=True)
class EmbeddingJob:
    """Every point of ``source``, embedded by ``encoder``, written to ``out`` as ``format``.

    ``writers``: writer threads of the local executor (None: :func:`default_writers`);
    ``publish_partial``: rows visible in ``out`` as they land (else at the commit, see
    :mod:`satclip.embedding.state`); ``executor``: None (this process) or a
    :class:`satclip.embedding.ray_adapter.RayExecutor`.
    """
    encoder: torch.nn.Module
    source: Source
    out: Path
    format: OutputFormat
    out_dtype: str = "float32"
    device: torch.device = torch.device("cpu")
    overwrite: bool = False
    verify: bool = False
    publish_partial: bool = False
    writers: int | None = None
    progress: bool | None = None
    log: Callable[[str], None] = print
    executor: object = None
    origin: str | None = None  # where the encoder's weights came from (satclip.load sets it), for the metadata
    compression: str | None = None

    @classmethod
    def create(cls, encoder, source: Source, out, *, fmt: str = "parquet", out_dtype: str = "float32", device=None,
               writers: int | None = None, executor=None, log=None, **kw) -> "EmbeddingJob":
        """Checks every setting once and resolves the defaults (device: the encoder's)."""
        fmt_obj = formats.get(fmt)
        fmt_obj.check_available()
        if kw.get("compression") not in COMPRESSIONS:
            raise SettingError(f"{{compression}} is not a compression; expected one of "
                               f"{', '.join(str(c) for c in COMPRESSIONS)}", compression=kw.get("compression"))
        if kw.get("compression") is None:
            kw["compression"] = fmt_obj.default_compression
        elif kw["compression"] == "none":
            kw["compression"] = None
        if kw.get("compression") and not fmt_obj.capabilities.compression:
            raise SettingError("{fmt} stores values as they are; {compression} applies to "
                               + " or ".join(f"{{fmt={f.name}}}" for f in formats.all_formats()
                                             if f.capabilities.compression), fmt=fmt, compression=kw["compression"])
        if out_dtype not in OUT_DTYPES:
            raise SettingError(f"{{out_dtype}} is not an output dtype; expected one of {', '.join(OUT_DTYPES)}",
                               out_dtype=out_dtype)
        caps = fmt_obj.capabilities
        if caps.grid_only and not source.grid_shape:
            raise SettingError("{fmt} stores a full lat/lon grid: give a grid source (--grid STEP, without "
                               "--land-only; satclip.embedding.sources.GridSource)", fmt=fmt)
        if source.keep_cols and not caps.extra_columns:
            raise SettingError(f"{{keep_cols=}} needs {_formats_with('extra_columns')} ({{fmt}} stores embeddings, "
                               "ids and coordinates)", fmt=fmt)
        if source.skips_rows and not caps.skipped_rows:
            raise SettingError(f"{{{source.skip_setting}=skip}} needs {_formats_with('skipped_rows')} ({{fmt}} "
                               f"keeps one row per {source.row_noun})", fmt=fmt)
        if executor is not None and caps.chunked_rows and not source.fixed_chunks and not (
                caps.grid_layout and source.grid_shape):
            raise SettingError("{fmt} from a source whose chunks vary in size (a land-only grid) is written by one "
                               "process, which takes turns on the storage chunks neighbours share: run it without Ray, "
                               "or choose {fmt=parquet} or {fmt=npy}", fmt=fmt)
        if writers is not None:
            if isinstance(writers, bool) or not isinstance(writers, int) or writers < 1:
                raise SettingError(f"{{writers=}} must be a positive number of writer threads, got {writers!r}")
            if executor is not None:
                raise SettingError("{writers=} applies to this process's executor; a Ray run writes on its encoder "
                                   "actors (RayExecutor(actors=...), --ray-actors)")
        if device is None:
            device = next(encoder.parameters()).device
        device = torch.device(device)
        origin = getattr(encoder, "origin", None)  # set by satclip.load / default_model; absent for others
        return cls(encoder, source, Path(out), fmt_obj, out_dtype, device, writers=writers, executor=executor,
                   log=log or (lambda msg: None), origin=origin, **kw)

    @property
    def grid_shape(self):
        """``(nlat, nlon)`` where the format stores the source's full grid as a grid, else None."""
        return self.source.grid_shape if self.format.capabilities.grid_layout else None

    @property
    def n_writers(self) -> int:
        return self.writers or default_writers(self.device)

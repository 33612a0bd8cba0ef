"""Reading a ``satclip embed`` output back, chunk by chunk (bounded memory) or whole.

Any reader of the formats works too (docs/guides/embedding.md, "Opening the outputs": pandas, DuckDB, polars, xarray, numpy, GDAL);
these helpers only hide the format, find the rows of an unfinished run (in its staging folder)
and turn int8 codes back into float32 values (``embedding = code * embedding_scale``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from . import formats
from .formats import INT8_UNWRITTEN
from .state import data_dir, manifest_path, read_manifest


def _dequantize(emb: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    if scale is None:
        return emb
    out = emb.astype(np.float32) * scale[:, None]
    out[emb == INT8_UNWRITTEN] = np.nan  # a Zarr cell never written (its fill value)
    return out


class IncompleteOutput(ValueError):
    """The output's run has not finished (killed, interrupted, or still running)."""


def manifest_of(out) -> dict:
    man = read_manifest(out)
    if man is None:
        raise ValueError(f"{out} is not a satclip embedding output, or was moved without its run state "
                         f"({manifest_path(out)}); any Parquet/Zarr/npy reader still reads it")
    return man


def check_complete(out, man: dict, allow_incomplete: bool) -> None:
    """Refuses (or, with ``allow_incomplete``, warns about) an output whose run has not finished."""
    if man.get("complete"):
        return
    done, total = len(man.get("done", [])), man.get("num_chunks", "?")
    what = (f"{out} is incomplete: {done} of {total} chunks written (the run was stopped or is still running); "
            "rerun the same `satclip embed` command to finish it")
    if not allow_incomplete:
        raise IncompleteOutput(what + ", or pass allow_incomplete=True to read the chunks written so far")
    import warnings
    unwritten = formats.get(man["format"]).unwritten_rows
    warnings.warn(what + (f"; the rows of unwritten chunks read as {unwritten}" if unwritten else ""), stacklevel=3)


def iter_embeddings(out, *, allow_incomplete: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(ids, lon, lat, embedding)`` blocks of an output, in row order; int8 codes come back
    multiplied by their per-point scale (float32). An output whose run has not finished is
    refused (:class:`IncompleteOutput`) unless ``allow_incomplete`` (then with a warning; its rows
    are read where the run keeps them)."""
    out = Path(out)
    man = manifest_of(out)
    check_complete(out, man, allow_incomplete)
    folder = data_dir(out, man)
    if not folder.exists():
        return
    for b in formats.get(man["format"]).iter_blocks(folder, man):
        yield b.ids, b.lon, b.lat, _dequantize(b.values, b.scale)


def read_embeddings(out, *, allow_incomplete: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The whole output as ``(ids, lon, lat, embedding)`` (in memory: for small outputs); see
    :func:`iter_embeddings` for ``allow_incomplete``."""
    blocks = list(iter_embeddings(out, allow_incomplete=allow_incomplete))
    if not blocks:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros((0, manifest_of(out)["dim"]), np.float32)
    return tuple(np.concatenate([b[i] for b in blocks]) for i in range(4))

"""Reading a ``satclip embed`` output back, chunk by chunk (bounded memory) or whole.

Any reader of the formats works too (see the README: pandas, DuckDB, polars, zarr, numpy);
these helpers only hide the format and turn int8 codes back into float32 values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .sinks import INT8_UNWRITTEN
from .state import manifest_path, read_manifest

BLOCK = 65536  # rows per block when reading the array formats


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
    unwritten = {"zarr": "NaN embeddings (int8: code -128, scale NaN)", "npy": "zeros"}.get(man.get("format"))
    warnings.warn(what + (f"; the rows of unwritten chunks read as {unwritten}" if unwritten else ""),
                  stacklevel=3)


def iter_embeddings(out, *, allow_incomplete: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(ids, lon, lat, embedding)`` blocks of an output, in row order; int8 codes come back
    multiplied by their per-point scale (float32). An output whose run has not finished is
    refused (:class:`IncompleteOutput`) unless ``allow_incomplete`` (then with a warning)."""
    out = Path(out)
    man = manifest_of(out)
    check_complete(out, man, allow_incomplete)
    fmt, dim = man["format"], man["dim"]
    if fmt == "parquet":
        import pyarrow.parquet as pq
        for p in sorted(out.glob("part-*.parquet")):
            t = pq.read_table(p)
            flat = t.column("embedding").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(len(t), dim)
            scale = t.column("embedding_scale").to_numpy() if "embedding_scale" in t.column_names else None
            yield (t.column("id").to_numpy(zero_copy_only=False), t.column("lon").to_numpy(), t.column("lat").to_numpy(),
                   _dequantize(flat, scale))
        return
    if fmt == "npy":
        ll = np.load(out / "lonlat.npy", mmap_mode="r")
        emb = np.load(out / "embeddings.npy", mmap_mode="r")
        ids = np.load(out / "ids.npy", mmap_mode="r")
        scale = np.load(out / "scales.npy", mmap_mode="r") if (out / "scales.npy").exists() else None
        for s in range(0, len(ids), BLOCK):
            e = s + BLOCK
            yield (np.array(ids[s:e]), np.array(ll[s:e, 0]), np.array(ll[s:e, 1]),
                   _dequantize(np.array(emb[s:e]), None if scale is None else np.array(scale[s:e])))
        return
    import zarr
    root = zarr.open_group(str(out), mode="r")
    has_scale = "embedding_scale" in root
    if root.attrs.get("layout") == "grid":
        nlat, nlon, dim = root["embedding"].shape
        lons, lats = root["lon"][:], root["lat"][:]
        rows = max(1, BLOCK // nlon)
        for r in range(0, nlat, rows):
            emb = root["embedding"][r:r + rows]
            k = emb.shape[0]
            scale = root["embedding_scale"][r:r + rows].reshape(-1) if has_scale else None
            lon, lat = np.meshgrid(lons, lats[r:r + k])
            yield (np.arange(r * nlon, (r + k) * nlon), lon.reshape(-1), lat.reshape(-1),
                   _dequantize(emb.reshape(-1, dim), scale))
        return
    n = root["embedding"].shape[0]
    for s in range(0, n, BLOCK):
        e = s + BLOCK
        yield (root["id"][s:e], root["lon"][s:e], root["lat"][s:e],
               _dequantize(root["embedding"][s:e], root["embedding_scale"][s:e] if has_scale else None))


def read_embeddings(out, *, allow_incomplete: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The whole output as ``(ids, lon, lat, embedding)`` (in memory: for small outputs); see
    :func:`iter_embeddings` for ``allow_incomplete``."""
    blocks = list(iter_embeddings(out, allow_incomplete=allow_incomplete))
    if not blocks:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros((0, manifest_of(out)["dim"]), np.float32)
    return tuple(np.concatenate([b[i] for b in blocks]) for i in range(4))

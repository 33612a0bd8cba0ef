"""Reading a ``satclip embed`` output back, chunk by chunk (bounded memory) or whole.

Any reader of the formats works too (see the README: pandas, DuckDB, polars, zarr, numpy);
these helpers only hide the format and turn int8 codes back into float32 values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .state import read_manifest

BLOCK = 65536  # rows per block when reading the array formats


def _dequantize(emb: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    return emb if scale is None else emb.astype(np.float32) * scale[:, None]


def manifest_of(out) -> dict:
    man = read_manifest(out)
    if man is None:
        raise ValueError(f"{out} is not a satclip embedding output (no _satclip/manifest.json)")
    return man


def iter_embeddings(out) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(ids, lon, lat, embedding)`` blocks of an output, in row order; int8 codes come back
    multiplied by their per-point scale (float32)."""
    out = Path(out)
    man = manifest_of(out)
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


def read_embeddings(out) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The whole output as ``(ids, lon, lat, embedding)`` (in memory: for small outputs)."""
    blocks = list(iter_embeddings(out))
    if not blocks:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros((0, manifest_of(out)["dim"]), np.float32)
    return tuple(np.concatenate([b[i] for b in blocks]) for i in range(4))

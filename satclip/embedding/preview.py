"""A picture of an embedding: the first three principal components as RGB on a world map.

For a lat/lon grid (full or land-only) the cells are drawn as an image; for other point sets
(tables, HEALPix, H3) as a scatter plot. Needs matplotlib (imported lazily).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .runner import MANIFEST


def read_embeddings(out) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, lon, lat, embedding) of a finished ``satclip embed`` output directory; int8 codes
    come back multiplied by their per-point scale (float32)."""
    out = Path(out)
    man = json.loads((out / MANIFEST).read_text())
    fmt = man["format"]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        t = pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))])
        emb = t.column("embedding").combine_chunks()
        flat = emb.values.to_numpy(zero_copy_only=False).reshape(len(t), -1)
        scale = t.column("embedding_scale").to_numpy() if "embedding_scale" in t.column_names else None
        return (t.column("id").to_numpy(), t.column("lon").to_numpy(), t.column("lat").to_numpy(),
                _dequantize(flat, scale))
    if fmt == "npy":
        ll = np.load(out / "lonlat.npy")
        emb = np.load(out / "embeddings.npy", mmap_mode="r")
        scale = np.load(out / "scales.npy") if (out / "scales.npy").exists() else None
        return np.load(out / "ids.npy"), ll[:, 0], ll[:, 1], _dequantize(emb, scale)
    import zarr
    root = zarr.open_group(str(out), mode="r")
    scale = root["embedding_scale"][:] if "embedding_scale" in root else None
    if root.attrs.get("layout") == "grid":
        emb = root["embedding"][:]
        nlat, nlon, dim = emb.shape
        lon, lat = np.meshgrid(root["lon"][:], root["lat"][:])
        flat_scale = None if scale is None else scale.reshape(-1)
        return np.arange(nlat * nlon), lon.reshape(-1), lat.reshape(-1), _dequantize(emb.reshape(-1, dim), flat_scale)
    return root["id"][:], root["lon"][:], root["lat"][:], _dequantize(root["embedding"][:], scale)


def _dequantize(emb: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    return emb if scale is None else emb.astype(np.float32) * scale[:, None]


def pca_rgb(emb: np.ndarray, sample: int = 200_000, seed: int = 0) -> np.ndarray:
    """``[N, 3]`` colours in [0, 1]: projection on the top 3 principal components (fitted on at
    most ``sample`` rows), each stretched between its 1st and 99th percentile."""
    x = np.asarray(emb, dtype=np.float64)
    rng = np.random.default_rng(seed)
    fit = x[rng.choice(len(x), size=min(sample, len(x)), replace=False)]
    mean = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    proj = (x - mean) @ vt[:3].T
    lo, hi = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)
    return np.clip((proj - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)


def render_preview(out, png, title: str | None = None) -> Path:
    """Writes ``png`` for the embedding output directory ``out``; returns its path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--preview needs `pip install matplotlib`") from None
    out, png = Path(out), Path(png)
    man = json.loads((out / MANIFEST).read_text())
    if not man.get("complete"):
        raise ValueError(f"{out} is not a finished run; resume it first")
    ids, lon, lat, emb = read_embeddings(out)
    rgb = pca_rgb(emb)
    src = man["source"]
    fig, ax = plt.subplots(figsize=(12, 6), dpi=100)
    if src["type"] == "grid":
        step = src["step"]
        nrows, ncols = int(round(180 / step)), int(round(360 / step))
        img = np.ones((nrows, ncols, 3))  # white where a land-only grid has sea
        row, col = np.divmod(ids.astype(np.int64), ncols)
        img[row, col] = rgb
        ax.imshow(img, origin="lower", extent=(-180, 180, -90, 90), interpolation="nearest")
    else:
        ax.scatter(lon, lat, c=rgb, s=max(0.1, min(4.0, 2e5 / max(len(lon), 1))), marker=".", linewidths=0)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    cfg = man.get("model_config", {})
    ax.set_title(title or f"SatCLIP embedding, first 3 principal components as RGB "
                          f"(L={cfg.get('legendre_polys')}, {len(lon):,} points)")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, bbox_inches="tight")
    plt.close(fig)
    return png

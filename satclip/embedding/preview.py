"""A picture of an embedding: the first three principal components as RGB on a world map, with
coastlines.

Built while streaming the output, in memory that depends on neither the output's size nor its
chunks: pass 1 reads an evenly spaced sample of at most ``SAMPLE`` rows and fits the principal
components and the colour stretch on it; pass 2 projects ``BLOCK`` rows at a time into a
fixed-size 8-bit raster (each pixel shows a point that falls in it: nearest-neighbour sampling,
as map quick-looks do). A lat/lon grid gets one pixel per cell up to ``MAX_WIDTH`` pixels across
(twice the figure's width: finer grids are sampled); other point sets (tables, HEALPix, H3) are
drawn as dots large enough to see when there are few of them, else as the same raster. Measured
on a 0.25-degree grid (1,036,800 points, L = 10, Parquet): the preview adds under 100 MB to the
run's peak memory. Needs matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .reader import iter_embeddings, manifest_of

SAMPLE = 50_000       # rows the components are fitted on
MAX_WIDTH = 2400      # raster width in pixels (height half of it); the figure is 1,200 pixels wide
SCATTER_MAX = 20_000  # point sets up to this size are drawn as dots
BLOCK = 8192          # rows projected at a time (their float64 copies stay a few MB)


class PCAColours:
    """Projection on the top 3 principal components of a sample, each stretched between its
    1st and 99th percentile on that sample, clipped to [0, 1]."""

    def __init__(self, sample: np.ndarray):
        x = np.asarray(sample, dtype=np.float32)
        self.mean = x.mean(0, dtype=np.float64)
        # covariance block by block in float64: a [D, D] matrix, not an SVD of the whole sample
        cov = np.zeros((x.shape[1], x.shape[1]))
        for s in range(0, len(x), 8192):
            d = x[s:s + 8192] - self.mean
            cov += d.T @ d
        _, vecs = np.linalg.eigh(cov)
        self.components = vecs[:, ::-1][:, :3].T
        proj = self._project(x)
        self.lo, self.hi = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)

    def _project(self, emb: np.ndarray) -> np.ndarray:
        """``[n, 3]``, BLOCK rows at a time (a float64 copy of a whole block would be 8 bytes a value)."""
        out = np.empty((len(emb), 3))
        for s in range(0, len(emb), BLOCK):
            out[s:s + BLOCK] = (np.asarray(emb[s:s + BLOCK], dtype=np.float64) - self.mean) @ self.components.T
        return out

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        proj = self._project(emb)
        return np.clip((proj - self.lo) / np.where(self.hi > self.lo, self.hi - self.lo, 1.0), 0.0, 1.0)


def _sample(out, n: int) -> np.ndarray:
    stride = max(1, -(-n // SAMPLE))
    parts, seen = [], 0
    for _, _, _, emb in iter_embeddings(out):
        first = (-seen) % stride  # every stride-th row of the whole output
        parts.append(np.array(emb[first::stride], dtype=np.float32))  # a copy: a view would keep the block
        seen += len(emb)
    return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)


def render_preview(out, png, title: str | None = None) -> Path:
    """Writes ``png`` for the finished embedding output directory ``out``; returns its path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--preview needs `pip install matplotlib`") from None
    from ..plotting import draw_coastlines, world_axes

    out, png = Path(out), Path(png)
    man = manifest_of(out)
    if not man.get("complete"):
        raise ValueError(f"{out} is not a finished run; resume it first")
    n = sum(r["rows"] for r in man.get("shards", {}).values()) or sum(len(b[0]) for b in iter_embeddings(out))
    if n == 0:
        raise ValueError(f"{out} holds no points to draw")
    colours = PCAColours(_sample(out, n))
    src = man["source"]
    fig, ax = plt.subplots(figsize=(12, 6), dpi=100)
    if src["type"] == "grid" or n > SCATTER_MAX:
        width = min(MAX_WIDTH, int(round(360 / src["step"]))) if src["type"] == "grid" else 1800
        height = max(1, width // 2)
        img = np.full((height * width, 3), 255, np.uint8)  # white where no point fell (sea in a land-only grid)
        for _, lon, lat, emb in iter_embeddings(out):
            for s in range(0, len(lon), BLOCK):
                lo, la = lon[s:s + BLOCK], lat[s:s + BLOCK]
                col = np.clip(((np.mod(lo + 180.0, 360.0)) / 360.0 * width).astype(np.int64), 0, width - 1)
                row = np.clip(((la + 90.0) / 180.0 * height).astype(np.int64), 0, height - 1)
                img[row * width + col] = np.rint(colours(emb[s:s + BLOCK]) * 255).astype(np.uint8)
        ax.imshow(img.reshape(height, width, 3), origin="lower", extent=(-180, 180, -90, 90),
                  interpolation="nearest")
    else:
        blocks = [(b[1], b[2], colours(b[3])) for b in iter_embeddings(out)]  # at most SCATTER_MAX points
        lon, lat, rgb = (np.concatenate(parts) for parts in zip(*blocks))
        size = float(np.clip(4e4 / n, 6.0, 60.0))  # points^2: a few thousand points stay visible dots
        ax.scatter(np.mod(lon + 180.0, 360.0) - 180.0, lat, c=rgb, s=size, marker="o", linewidths=0)
    draw_coastlines(ax)
    cfg = man.get("model_config", {})
    world_axes(ax, title or f"SatCLIP embedding, first 3 principal components as RGB "
                            f"(L={cfg.get('legendre_polys')}, {n:,} points)")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, bbox_inches="tight")
    plt.close(fig)
    return png

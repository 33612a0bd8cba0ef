"""The S2-100K dataset layout: ``index.csv`` (columns ``lat, lon, url, fn``) and the patches
``images/<fn>`` (12-band uint16 GeoTIFF, 256 x 256, bands B01 B02 B03 B04 B05 B06 B07 B08 B8A
B09 B11 B12), read with rasterio. Patches lying beside ``index.csv`` are accepted too.

Samples are ``{"image": [13, H, W] float32, "point": [2] float64 (lon, lat degrees)}``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..model.bands import s2_to_13_bands


def _rasterio():
    try:
        import rasterio
    except ImportError:
        raise ImportError("reading S2-100K patches needs rasterio: pip install 'satclip[train]'") from None
    return rasterio


def read_index(root) -> list[tuple[float, float, str]]:
    """``(lon, lat, file name)`` rows of ``root/index.csv``, checked."""
    index = Path(os.fspath(root)) / "index.csv"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found: an S2-100K directory holds index.csv and images/patch_*.tif")
    rows = []
    with open(index, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"lat", "lon", "fn"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{index}: missing columns {sorted(missing)} (expected lat, lon, url, fn)")
        for i, row in enumerate(reader):
            try:
                lon, lat = float(row["lon"]), float(row["lat"])
            except ValueError:
                raise ValueError(f"{index}: row {i + 1} has a non-numeric lon/lat: {row['lon']!r}, {row['lat']!r}") from None
            if not (-90 <= lat <= 90) or not (-180 <= lon <= 360):
                raise ValueError(f"{index}: row {i + 1} has lon={lon}, lat={lat} outside the valid range")
            rows.append((lon, lat, row["fn"]))
    if not rows:
        raise ValueError(f"{index} lists no patches")
    return rows


class S2100KDataset(Dataset):
    """Sentinel-2 patches and their centre coordinates in the S2-100K layout."""

    def __init__(self, root, transform=None):
        self.root = Path(os.fspath(root))
        self.rows = read_index(self.root)
        self.transform = transform
        self._dirs = [self.root / "images", self.root]
        missing = [fn for _, _, fn in self.rows if self._find(fn) is None]
        if missing:
            raise FileNotFoundError(f"{self.root}: {len(missing)} of {len(self.rows)} patches listed in index.csv are "
                                    f"missing (first: {missing[0]}; looked in images/ and beside index.csv)")

    def _find(self, fn: str) -> Path | None:
        for d in self._dirs:
            if (d / fn).is_file():
                return d / fn
        return None

    def __len__(self) -> int:
        return len(self.rows)

    def coordinates(self) -> torch.Tensor:
        """``[N, 2]`` (lon, lat) of every patch, float64."""
        return torch.tensor([(lon, lat) for lon, lat, _ in self.rows], dtype=torch.float64)

    def __getitem__(self, i: int) -> dict:
        lon, lat, fn = self.rows[i]
        path = self._find(fn)
        with _rasterio().open(path) as src:
            if src.count != 12:
                raise ValueError(f"{path}: {src.count} bands, expected the 12 Sentinel-2 L2A bands of S2-100K")
            bands = src.read()
        sample = {"image": s2_to_13_bands(bands), "point": torch.tensor([lon, lat], dtype=torch.float64)}
        return self.transform(sample) if self.transform else sample

"""Shared map drawing: coastlines as the land/sea boundary of a 0.25-degree land mask shipped
in ``satclip/data/land_mask_0.25deg.npz`` (14 KB, sampled from ``global-land-mask``, whose own
1-km mask takes about 1 GB of memory once loaded), used over embedding previews and evaluation
maps. matplotlib is imported by the callers.

Imports nothing from the package but its data (a leaf beside :mod:`satclip.functional`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

LAND_MASK = "land_mask_0.25deg.npz"


@lru_cache(maxsize=1)
def land_grid():
    """``(lon [1440], lat [720], land [720, 1440] bool)`` at the 0.25-degree cell centres."""
    with resources.files("satclip.data").joinpath(LAND_MASK).open("rb") as f:
        z = np.load(f)
        step = float(z["step"])
        land = np.unpackbits(z["land"], axis=1).astype(bool)
    lon = np.arange(-180 + step / 2, 180, step)
    lat = np.arange(-90 + step / 2, 90, step)
    return lon, lat, land[:, : len(lon)]


def build_land_mask(path, step: float = 0.25) -> None:
    """How the shipped mask was made (needs global-land-mask)."""
    from global_land_mask import globe

    lon = np.arange(-180 + step / 2, 180, step)
    lat = np.arange(-90 + step / 2, 90, step)
    lon2, lat2 = np.meshgrid(lon, lat)
    np.savez_compressed(path, land=np.packbits(globe.is_land(lat2, lon2), axis=1), step=step)


def draw_coastlines(ax, color: str = "black", linewidth: float = 0.4) -> None:
    """Draws the coastlines on a lon/lat axes."""
    lon, lat, land = land_grid()
    ax.contour(lon, lat, land.astype(np.float32), levels=[0.5], colors=color, linewidths=linewidth)


def world_axes(ax, title: str | None = None) -> None:
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    if title:
        ax.set_title(title)

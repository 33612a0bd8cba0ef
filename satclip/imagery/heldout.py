"""Held-out Blue Marble patches and error summaries: what ``satclip demo`` and
``benchmarks/localisation.py`` measure localisation on.

The patches are the validation split of a ``satclip train --data bluemarble`` run with the same
size, patch, seed and fraction (the bundled model's: 16,384 patches of 32 px, seed 0, 10%), so
the model never saw them in training."""

from __future__ import annotations

import numpy as np
import torch


def bluemarble_heldout(n: int | None = None, *, size: int = 16384, patch_px: int = 32, seed: int = 0,
                       val_fraction: float = 0.1, bands=None) -> tuple[torch.Tensor, np.ndarray]:
    """(images ``[n, C, P, P]`` float32, true lon/lat ``[n, 2]``): the first ``n`` (default all)
    validation patches, centre-cropped, no augmentation; ``bands``: the channels the model takes
    (``(3, 2, 1)`` for an RGB model; default all 13 slots)."""
    from ..training.lightning import SatCLIPDataModule

    dm = SatCLIPDataModule("bluemarble", bluemarble_size=size, patch_px=patch_px, seed=seed,
                           val_fraction=val_fraction, bands=bands)
    _, val = dm.datasets(train_transform=False)
    if val is None:
        raise ValueError("val_fraction is 0: there are no held-out patches")
    rows = range(len(val) if n is None else min(n, len(val)))
    samples = [val[i] for i in rows]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["point"] for s in samples]).numpy()


def model_bands(model) -> tuple | None:
    """The 13-band-layout channels a Blue Marble model takes: RGB for 3 channels, else all."""
    return (3, 2, 1) if model.in_channels == 3 else None


def error_summary(distance_km: np.ndarray) -> dict:
    """Percentiles (km) and hit rates of great-circle errors."""
    d = np.asarray(distance_km, np.float64)
    p = np.percentile(d, [10, 25, 50, 75, 90])
    return {"p10_km": p[0], "p25_km": p[1], "median_km": p[2], "p75_km": p[3], "p90_km": p[4],
            "within_500_km": float((d <= 500).mean()), "within_1000_km": float((d <= 1000).mean()),
            "within_2500_km": float((d <= 2500).mean())}

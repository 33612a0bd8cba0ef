"""Held-out Blue Marble patches: what ``satclip demo`` and ``benchmarks/localisation.py``
measure localisation on.

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
    from .lightning import SatCLIPDataModule

    dm = SatCLIPDataModule("bluemarble", bluemarble_size=size, patch_px=patch_px, seed=seed,
                           val_fraction=val_fraction, bands=bands)
    _, val = dm.datasets(train_transform=False)
    if val is None:
        raise ValueError("val_fraction is 0: there are no held-out patches")
    rows = range(len(val) if n is None else min(n, len(val)))
    samples = [val[i] for i in rows]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["point"] for s in samples]).numpy()

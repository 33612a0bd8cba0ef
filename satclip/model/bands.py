"""The image tower's input convention: 12 Sentinel-2 L2A bands as the original trained on them.

``[12, H, W]`` uint16 digital numbers (B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12) / 10000,
with a zero band inserted at index 10 where the MoCo backbones expect B10: ``[13, H, W]``
float32. Training (S2-100K) and inference (GeoTIFF patches) both read images this way.
"""

from __future__ import annotations

import numpy as np
import torch

B10_INDEX = 10
IN_CHANNELS = 13  # 12 Sentinel-2 L2A bands + the zero B10 the MoCo backbones expect at index 10


def s2_to_13_bands(bands: np.ndarray) -> torch.Tensor:
    """``[12, H, W]`` uint16 L2A bands -> ``[13, H, W]`` float32 reflectance with a zero B10."""
    if bands.ndim != 3 or bands.shape[0] != 12:
        raise ValueError(f"expected 12 Sentinel-2 L2A bands as [12, H, W], got shape {list(bands.shape)}")
    x = torch.from_numpy(bands.astype(np.float32) / 10000.0)
    return torch.cat([x[:B10_INDEX], x.new_zeros(1, *x.shape[1:]), x[B10_INDEX:]])


def model_bands(in_channels: int) -> tuple | None:
    """The 13-band-layout channels a model with ``in_channels`` inputs takes by default: red,
    green, blue ``(3, 2, 1)`` for 3 channels, else all 13 (None)."""
    return (3, 2, 1) if in_channels == 3 else None

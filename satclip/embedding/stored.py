"""What an output stores, in words every layer shares without importing torch: the output dtypes,
the int8 formula, and :class:`Converted` (one chunk's values as a format writes them). The
conversion itself is in :mod:`.convert`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUT_DTYPES = ("float32", "float16", "int8")
INT8_FORMULA = "embedding = code * embedding_scale"


@dataclass
class Converted:
    """One chunk's stored values: ``values [n, D]`` (float32 / float16 / int8, C order) and, for
    int8, ``scale [n]`` float32."""
    values: np.ndarray
    scale: np.ndarray | None = None

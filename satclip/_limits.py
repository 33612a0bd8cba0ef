"""Limits and names shared by Python and the compiled kernels, defined once in ``_limits.json``
(torch-free: the CLI's parser reads them without importing torch). The C++ glue gets the same
values from the header CMake generates from that file (``csrc/common/limits.h.in``), so the two
cannot disagree.

``PRECISIONS``, the location encoder's precision modes:

- ``"float32"``: exact float32 GEMMs;
- ``"tf32"``: GEMM operands rounded to 10 mantissa bits (TF32 tensor cores; float32 on a CPU);
- ``"bf16"``: operands rounded to bf16 (7 mantissa bits), float32 sums;
- ``"float16"``: operands rounded to IEEE half (10 mantissa bits, half's range), float32 sums.

``MAX_DEGREE``: the largest ``legendre_polys`` (L) the kernels and the twins accept (from 1).
"""

import json
from pathlib import Path

_LIMITS = json.loads(Path(__file__).with_name("_limits.json").read_text())

PRECISIONS: tuple = tuple(_LIMITS["precisions"])
MAX_DEGREE: int = int(_LIMITS["max_degree"])

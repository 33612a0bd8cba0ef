"""The location encoder's precision modes, defined once, torch-free (the CLI's parser reads them
without importing torch): the options, the op checks, the pure-PyTorch twin's rounding and the
CLI take this tuple; the C++ glue's table (``csrc/glue/encoder_loop.h``, ``kPrecisions``) lists the
same names in the same order (``tests/ops/test_precision.py`` checks the compiled op accepts
exactly these).

- ``"float32"``: exact float32 GEMMs;
- ``"tf32"``: GEMM operands rounded to 10 mantissa bits (TF32 tensor cores; float32 on a CPU);
- ``"bf16"``: operands rounded to bf16 (7 mantissa bits), float32 sums;
- ``"float16"``: operands rounded to IEEE half (10 mantissa bits, half's range), float32 sums.
"""

PRECISIONS = ("float32", "tf32", "bf16", "float16")

"""From the encoder's output to the values a format stores: ``float32``, ``float16`` or ``int8``
codes with one float32 scale per point (``embedding ~= code * embedding_scale``).

Every conversion runs in torch or in this package's kernels (vectorised, releasing the GIL),
never in numpy: numpy's float16 cast is about 30x slower than torch's on these CPUs (10.5 ms
against 0.3 ms for 16,384 x 256 values, AMD EPYC Zen 4). On a GPU the conversion happens there,
before the copy to the host, so the bus moves 2 (float16) or about 1 (int8) byte per value
instead of 4. On the CPU it runs in the writer threads, beside the encoder.

int8: per-point symmetric codes, ``scale = max|e| / 127`` (1 for an all-zero row), ``code =
round_half_even(e / scale)`` in [-127, 127] (-128 is never a code: the Zarr format uses it to
mark cells not written yet); the ``satclip::quantize_int8`` op (one pass over each row while it
is in cache: 1.0 ms single-threaded for 16,384 x 256 values where its pure-PyTorch twin takes 3.6 ms on two
threads). The error is at most half a step, ``scale / 2``, per component.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ..ops import ops

from .stored import INT8_FORMULA, OUT_DTYPES, Converted  # noqa: F401  (re-exported)


def quantize_int8(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The int8 codes and scales of ``emb [n, D]`` written out in numpy: the reference that the
    quantisation the writers run (the ``satclip::quantize_int8`` op: a C++/CUDA kernel, or its
    pure-PyTorch twin) is tested against, bit for bit."""
    emb = np.asarray(emb, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        scale = np.abs(emb).max(axis=1, initial=0.0).astype(np.float32) / np.float32(127.0)
        scale[np.isnan(np.abs(emb).sum(axis=1))] = np.nan  # a row with a NaN: NaN scale
        scale[scale == 0] = 1.0
        q = np.rint(emb / scale[:, None])
    q[np.isnan(q)] = 0
    return q.astype(np.int8), scale


class Scratch:
    """Per-thread reusable buffers of the conversion (float16 values, int8 codes and their
    float32 work array), grown to the largest chunk seen. A format's write consumes the values
    before the same thread converts the next chunk, so one set per thread is enough."""

    def __init__(self):
        self._local = threading.local()

    def get(self, name: str, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        bufs = self._local.__dict__.setdefault("bufs", {})
        numel = int(np.prod(shape))
        buf = bufs.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != dtype:
            buf = bufs[name] = torch.empty(max(numel, 1), dtype=dtype)
        return buf[:numel].view(shape)


def convert(emb: torch.Tensor, out_dtype: str, scratch: Scratch | None = None, threads: int = 0) -> Converted:
    """``emb [n, D]`` (any device) as the values stored for ``out_dtype``, on the host; see
    the module docstring for where this runs. ``scratch``: a writer thread's reused buffers;
    ``threads``: the CPU threads of one int8 conversion (0: torch's count; a writer asks for 1,
    the writers being the parallelism)."""
    if out_dtype not in OUT_DTYPES:
        raise ValueError(f"out_dtype must be one of {OUT_DTYPES}, got {out_dtype!r}")
    on_host = emb.device.type == "cpu"
    if out_dtype == "float32":
        return Converted(emb.float().to("cpu").numpy())
    shape = tuple(emb.shape)
    if out_dtype == "float16":
        if on_host and scratch is not None:
            return Converted(scratch.get("f16", shape, torch.float16).copy_(emb).numpy())
        return Converted(emb.half().to("cpu").numpy())
    codes, scale = ops.quantize_int8(emb.float(), threads)
    return Converted(codes.to("cpu").numpy(), scale.to("cpu").numpy())


"""From the encoder's output to the values a format stores: ``float32``, ``float16`` or ``int8``
codes with one float32 scale per point (``embedding ~= code * embedding_scale``).

Every conversion runs in torch (vectorised, multi-threaded, releases the GIL), never in numpy:
numpy's float16 cast is about 30x slower than torch's on these CPUs (10.5 ms against 0.3 ms for
16,384 x 256 values, AMD EPYC Zen 4). On a GPU the conversion happens there, before the copy to
the host, so the bus moves 2 (float16) or about 1 (int8) byte per value instead of 4. On the CPU
it runs in the writer threads, beside the encoder.

int8: per-point symmetric codes, ``scale = max|e| / 127`` (1 for an all-zero row), ``code =
round_half_even(e / scale)`` clipped to +-127 (-128 is never a code: the Zarr format uses it to
mark cells not written yet). The error is at most half a step, ``scale / 2``, per component.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

OUT_DTYPES = ("float32", "float16", "int8")
INT8_FORMULA = "embedding = code * embedding_scale"


@dataclass
class Converted:
    """One chunk's stored values: ``values [n, D]`` (float32 / float16 / int8, C order) and, for
    int8, ``scale [n]`` float32."""
    values: np.ndarray
    scale: np.ndarray | None = None


def quantize_int8(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The int8 codes and scales of ``emb [n, D]`` written out in numpy: the reference the torch
    conversion (:func:`quantize_int8_torch`, which the writers run) is tested against, bit for bit."""
    scale = np.abs(emb).max(axis=1).astype(np.float32) / np.float32(127.0)
    scale[scale == 0] = 1.0
    codes = np.clip(np.rint(emb / scale[:, None]), -127, 127).astype(np.int8)
    return codes, scale


def quantize_int8_torch(emb: torch.Tensor, codes: torch.Tensor | None = None,
                        work: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 codes and float32 scales of ``emb [n, D]`` where it lives (float32 division, round half
    to even). ``codes`` ([n, D] int8) and ``work`` ([n, D] float32) are optional buffers to write
    into (a writer thread reuses its own: fresh pages cost more than the arithmetic)."""
    emb = emb.float()
    scale = emb.abs().amax(dim=1).div_(127.0)
    scale.masked_fill_(scale == 0, 1.0)
    work = torch.div(emb, scale[:, None], out=work) if work is not None else emb / scale[:, None]
    work.round_().clamp_(-127, 127)
    if codes is None:
        return work.to(torch.int8), scale
    return codes.copy_(work), scale


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


def convert(emb: torch.Tensor, out_dtype: str, scratch: Scratch | None = None) -> Converted:
    """``emb [n, D]`` (any device) as the values stored for ``out_dtype``, on the host; see
    the module docstring for where this runs."""
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
    if on_host and scratch is not None:
        codes, scale = quantize_int8_torch(emb, scratch.get("codes", shape, torch.int8),
                                           scratch.get("work", shape, torch.float32))
        return Converted(codes.numpy(), scale.numpy())
    codes, scale = quantize_int8_torch(emb)
    return Converted(codes.to("cpu").numpy(), scale.to("cpu").numpy())


"""The CPU and CUDA kernel of ``satclip::clip_loss_streaming`` and its backward: the fixed-shift,
cache-blocked schedule. Registered by :mod:`.extension` beside the compiled kernels (unless
``SATCLIP_DISABLE_EXTENSION=1``, which leaves the running-max twin of :mod:`.reference`).

It is made of ATen calls only (GEMMs on blocks, exp, reductions), so it lives in Python: the
stable C++ ABI the compiled library is built against has no Scalar arithmetic to write it with,
and the C++ loop of the same ATen calls that it replaces bought nothing over it: forward +
backward at b = 8,192, D = 256, float32, 2 threads, 838 ms in C++ against 847 ms here, best of 6
alternating runs (``benchmarks/glue_ab.py``, AMD EPYC Zen 4): a few microseconds of Python per
block of 512 x 1024 logits, beside the block's GEMM and exp.

Inputs as the twin: ``img``, ``loc`` ``[b, D]`` (normalised, one dtype), ``scale`` the 0-dim
exponentiated temperature, ``all_img``/``all_loc`` ``[G, D]`` (every process's rows, this one's at
``offset``) or None for one process: then the keys are ``img``/``loc`` and one GEMM per block
serves both directions (rows: image -> location; columns: location -> image).

Fixed shift: the features are unit vectors, so every logit lies in ``[-scale, scale]`` and
``exp(logit - scale)`` neither overflows nor underflows to zero while ``2 * scale`` is below ~80
(float32) or ~700 (float64). One exp per logit then serves both directions, and the work goes in
blocks of ``ROWS`` x ``tile`` logits that stay in cache between the GEMM that makes them and the
passes that use them. Larger scales take the twin's running-max schedule. A row's cross-entropy is
``log(1 + sum over the negatives of exp(logit - positive))``, never a log-sum-exp minus the
positive (which cancels to the rounding of a logit when the positive dominates); the backward
gives the positive ``-expm1(-ce)``.
"""

from __future__ import annotations

import math

import torch

from . import checks
from . import reference as ref

ROWS = 512          # rows per block
BLOCK_COLS = 1024   # key columns per block (when tile is 0)


def fixed_shift(scale: torch.Tensor) -> bool:
    s = float(scale)
    return math.isfinite(s) and s > 0 and 2 * s < (80.0 if scale.dtype == torch.float32 else 700.0)


def _positives(block: torch.Tensor, i: int, j: int, offset: int) -> torch.Tensor:
    """The positives of a block of rows [i, ..) x keys [j, ..): query row r is paired with key
    offset + i + r, so they lie on the block's diagonal i + offset - j (empty when outside it)."""
    return block.diagonal(i + offset - j)


def _shifted_exp(q: torch.Tensor, k: torch.Tensor, c: float) -> torch.Tensor:
    """exp(q k^T - c) for one block (q already multiplied by the scale c)."""
    return (q @ k.t()).sub_(c).exp_()


def _blocked_sums(q, keys, c: float, t: int, columns: bool, offset: int):
    """Row (and, for one process, column) sums of exp(logit - c) over the negatives."""
    b, g = q.shape[0], keys.shape[0]
    rows = q.new_zeros(b)
    cols = q.new_zeros(g) if columns else None
    for i in range(0, b, ROWS):
        qi = q[i:i + ROWS]
        for j in range(0, g, t):
            e = _shifted_exp(qi, keys[j:j + t], c)
            _positives(e, i, j, offset).zero_()
            rows[i:i + ROWS] += e.sum(1)
            if columns:
                cols[j:j + t] += e.sum(0)
    return rows, cols


def clip_loss_streaming(img, loc, all_img, all_loc, scale, offset: int, tile: int = 0):
    checks.clip_inputs(img, loc, all_img, all_loc, scale, offset)
    if not fixed_shift(scale):
        return ref.clip_loss_streaming(img, loc, all_img, all_loc, scale, offset, tile)
    b = img.shape[0]
    c = float(scale)
    t = tile if tile > 0 else BLOCK_COLS
    pos = scale * (img * loc).sum(1)  # the positives' logits (own rows)
    q_img = img * scale
    if all_img is None:
        neg1, neg2 = _blocked_sums(q_img, loc, c, t, True, 0)
    else:
        neg1 = _blocked_sums(q_img, all_loc, c, t, False, offset)[0]
        neg2 = _blocked_sums(loc * scale, all_img, c, t, False, offset)[0]
    ce1 = ref._cross_entropy(neg1.log_().add_(c), pos)
    ce2 = ref._cross_entropy(neg2.log_().add_(c), pos)
    loss = (ce1.sum() + ce2.sum()) / (2 * b)
    return loss, ce1, ce2


def clip_loss_streaming_backward(grad, img, loc, all_img, all_loc, scale, ce1, ce2, offset: int, tile: int = 0):
    checks.clip_inputs(img, loc, all_img, all_loc, scale, offset)
    if not fixed_shift(scale):
        return ref.clip_loss_streaming_backward(grad, img, loc, all_img, all_loc, scale, ce1, ce2, offset, tile)
    b = img.shape[0]
    c = grad.to(img.dtype) / (2 * b)  # d loss / d logit, per softmax
    pos = scale * (img * loc).sum(1)
    w = (torch.expm1(-ce1) + torch.expm1(-ce2)) * c  # the positives, both directions
    g_img = (w * scale)[:, None] * loc
    g_loc = (w * scale)[:, None] * img
    g_scale = (w * (img * loc).sum(1)).sum()
    lse1, lse2 = pos + ce1, pos + ce2  # the log-sum-exps over every key
    s = float(scale)
    t = tile if tile > 0 else BLOCK_COLS

    # d loss / d logit = c * (exp(logit - lse1_i) [+ exp(logit - lse2_j)]) = c * E * (u_i [+ v_j]),
    # E = exp(logit - s), u = exp(s - lse1), v = exp(s - lse2), on the negatives (the positives
    # above). The temperature's gradient, sum(dA * A) / s = sum_i q_i . (dA @ keys)_i, reuses the
    # product that feeds the query gradient.
    def direction(q, keys, lse_rows, lse_cols, key_offset, g_q, g_keys):
        nonlocal g_scale
        u = (s - lse_rows).exp_() * c
        v = (s - lse_cols).exp_() * c if lse_cols is not None else None
        qs = q * scale
        for i in range(0, q.shape[0], ROWS):
            qi = q[i:i + ROWS]
            for j in range(0, keys.shape[0], t):
                kj = keys[j:j + t]
                da = _shifted_exp(qs[i:i + ROWS], kj, s)
                if v is not None:
                    da.mul_(u[i:i + ROWS, None] + v[None, j:j + t])
                else:
                    da.mul_(u[i:i + ROWS, None])
                _positives(da, i, j, key_offset).zero_()
                dk = da @ kj
                g_q[i:i + ROWS].add_(dk, alpha=s)
                g_scale = g_scale + (qi * dk).sum()
                g_keys[j:j + t].add_(da.t() @ qi, alpha=s)

    if all_img is None:
        direction(img, loc, lse1, lse2, 0, g_img, g_loc)  # both directions from one block of logits
        empty = img.new_empty(0)
        return g_img, g_loc, empty, empty, g_scale
    g_all_img, g_all_loc = torch.zeros_like(all_img), torch.zeros_like(all_loc)
    direction(img, all_loc, lse1, None, offset, g_img, g_all_loc)
    direction(loc, all_img, lse2, None, offset, g_loc, g_all_img)
    return g_img, g_loc, g_all_img, g_all_loc, g_scale

"""Argument checks of the pure-PyTorch twins, the same as the compiled kernels' (``csrc/glue/op_checks.h``):
the same conditions, ``RuntimeError`` (what ``TORCH_CHECK`` raises) and the same words, so that a
caller meets one error whichever implementation runs (``SATCLIP_DISABLE_EXTENSION=1``, no
compiled library, or a device without a kernel)."""

from __future__ import annotations

import torch

from .._limits import MAX_DEGREE, PRECISIONS  # noqa: F401  (MAX_DEGREE public here)

_FLOATS = (torch.float32, torch.float64)


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(int(s)) for s in t.shape) + "]"


def _fail(op: str, msg: str):
    raise RuntimeError(f"{op}: {msg}")


def lonlat(x: torch.Tensor, op: str) -> None:
    if x.dim() != 2 or x.shape[1] != 2:
        _fail(op, f"expected lonlat of shape [N, 2] (lon, lat in degrees), got {_shape(x)}")
    if x.dtype not in _FLOATS:
        _fail(op, f"expected lonlat of dtype float32 or float64, got {x.dtype}")


def degree(L: int, op: str) -> None:
    if not 1 <= L <= MAX_DEGREE:
        _fail(op, f"legendre_polys must be in [1, {MAX_DEGREE}], got {L}")


def scale(s, x: torch.Tensor, L: int, op: str) -> None:
    if s is None:
        return
    if s.dim() != 1 or s.shape[0] != L * L:
        _fail(op, f"expected scale of shape [{L * L}] (one factor per feature), got {_shape(s)}")
    if s.dtype != x.dtype or s.device != x.device:
        _fail(op, f"scale ({s.dtype}, {s.device}) must match lonlat ({x.dtype}, {x.device})")


def sh_grad(grad: torch.Tensor, x: torch.Tensor, L: int, op: str) -> None:
    n = x.shape[0]
    if grad.dim() != 2 or grad.shape[0] != n or grad.shape[1] != L * L:
        _fail(op, f"expected grad of shape [{n}, {L * L}], got {_shape(grad)}")
    if grad.dtype != x.dtype:
        _fail(op, f"grad dtype {grad.dtype} differs from lonlat dtype {x.dtype}")
    if grad.device != x.device:
        _fail(op, f"grad on {grad.device}, lonlat on {x.device}")


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, op: str) -> None:
    if x.dim() != 2:
        _fail(op, f"expected x of shape [N, in], got {_shape(x)}")
    if w.dim() != 2 or w.shape[1] != x.shape[1]:
        _fail(op, f"expected weight of shape [out, {x.shape[1]}], got {_shape(w)}")
    if b.dim() != 1 or b.shape[0] != w.shape[0]:
        _fail(op, f"expected bias of shape [{w.shape[0]}], got {_shape(b)}")
    if not x.dtype == w.dtype == b.dtype:
        _fail(op, f"x, weight and bias must share one dtype, got {x.dtype}, {w.dtype}, {b.dtype}")
    if x.dtype not in _FLOATS:
        _fail(op, f"expected float32 or float64, got {x.dtype}")
    if not x.device == w.device == b.device:
        _fail(op, f"x, weight and bias must be on one device, got {x.device}, {w.device}, {b.device}")


def mask(m, like: torch.Tensor, rows: int, cols: int, op: str) -> None:
    if m is None:
        return
    if m.dim() != 2 or m.shape[0] != rows or m.shape[1] != cols:
        _fail(op, f"expected mask of shape [{rows}, {cols}], got {_shape(m)}")
    if m.dtype != like.dtype or m.device != like.device:
        _fail(op, f"mask must match x in dtype and device, got {m.dtype} on {m.device}")


def siren_backward(grad_y, cos, x, weight, op: str) -> None:
    if weight.dim() != 2 or x.dim() != 2 or weight.shape[1] != x.shape[1]:
        _fail(op, f"expected x [N, in] and weight [out, in], got {_shape(x)} and {_shape(weight)}")
    n, h = x.shape[0], weight.shape[0]
    if grad_y.dim() != 2 or grad_y.shape[0] != n or grad_y.shape[1] != h or cos.shape != grad_y.shape:
        _fail(op, f"expected grad_y and cos of shape [{n}, {h}], got {_shape(grad_y)} and {_shape(cos)}")


def sh_siren_layer(x, L: int, weight, bias, precision: str) -> bool:
    """Returns whether the mode is bf16."""
    op = "satclip::sh_siren_layer"
    lonlat(x, op)
    degree(L, op)
    if weight.dim() != 2 or weight.shape[1] != L * L:
        _fail(op, f"expected weight of shape [out, {L * L}] (L*L SH features), got {_shape(weight)}")
    if bias.dim() != 1 or bias.shape[0] != weight.shape[0]:
        _fail(op, f"expected bias of shape [{weight.shape[0]}], got {_shape(bias)}")
    if not (weight.dtype == bias.dtype == x.dtype and weight.device == bias.device == x.device):
        _fail(op, f"weight and bias must match lonlat's dtype {x.dtype} and device {x.device}, got "
                  f"{weight.dtype} on {weight.device} and {bias.dtype} on {bias.device}")
    if precision not in ("float32", "bf16"):
        _fail(op, f"precision must be 'float32' or 'bf16', got '{precision}'")
    if precision == "bf16" and x.dtype != torch.float32:
        _fail(op, f"precision 'bf16' needs float32 inputs and weights, got {x.dtype}")
    return precision == "bf16"


def encoder(x, L: int, weights, biases, tile_points: int, precision: str) -> None:
    op = "satclip::location_encoder_forward"
    lonlat(x, op)
    degree(L, op)
    if not weights or len(weights) != len(biases):
        _fail(op, f"expected as many biases as weights (at least one layer), got {len(weights)} weights "
                  f"and {len(biases)} biases")
    if tile_points <= 0:
        _fail(op, f"tile_points must be positive, got {tile_points}")
    width = L * L
    for i, (w, b) in enumerate(zip(weights, biases)):
        if w.dim() != 2 or w.shape[1] != width:
            what = "L*L SH features" if i == 0 else "previous layer's width"
            _fail(op, f"weights[{i}] must have {width} inputs ({what}), got {_shape(w)}")
        if b.dim() != 1 or b.shape[0] != w.shape[0]:
            _fail(op, f"biases[{i}] must be [{w.shape[0]}], got {_shape(b)}")
        if not (w.dtype == b.dtype == x.dtype and w.device == b.device == x.device):
            _fail(op, f"layer {i} must match lonlat's dtype {x.dtype} and device {x.device}")
        width = w.shape[0]
    if precision not in PRECISIONS:
        _fail(op, f"precision must be one of {', '.join(repr(p) for p in PRECISIONS)}, got '{precision}'")
    if precision != "float32" and x.dtype != torch.float32:
        _fail(op, f"precision '{precision}' needs float32 inputs and weights, got {x.dtype}")


def iso_latitude_encoder(lon_parts, row_weights, row_counts, weights, biases, tile_points: int) -> None:
    op = "satclip::iso_latitude_encoder_forward"
    if lon_parts.dtype not in _FLOATS:
        _fail(op, f"expected float32 or float64 lon_parts, got {lon_parts.dtype}")
    if lon_parts.dim() != 2:
        _fail(op, f"lon_parts must be [n, 2L - 1], got {_shape(lon_parts)}")
    if row_weights.dim() != 3 or row_weights.shape[1] != lon_parts.shape[1]:
        _fail(op, f"row_weights must be [rows, {lon_parts.shape[1]}, H], got {_shape(row_weights)}")
    if len(row_counts) != row_weights.shape[0]:
        _fail(op, f"expected {row_weights.shape[0]} row counts (one per row of row_weights), got {len(row_counts)}")
    if any(c < 0 for c in row_counts):
        _fail(op, f"row counts must be >= 0, got {min(row_counts)}")
    if sum(row_counts) != lon_parts.shape[0]:
        _fail(op, f"row counts sum to {sum(row_counts)} but lon_parts has {lon_parts.shape[0]} points")
    if not weights or len(biases) != len(weights) + 1:
        _fail(op, "expected the layers after the first (at least the output layer) and one bias more "
                  f"(the first layer's), got {len(weights)} weights and {len(biases)} biases")
    if tile_points <= 0:
        _fail(op, f"tile_points must be positive, got {tile_points}")
    width = row_weights.shape[2]
    for i, b in enumerate(biases):
        w = row_weights if i == 0 else weights[i - 1]
        if i > 0:
            if w.dim() != 2 or w.shape[1] != width:
                _fail(op, f"weights[{i - 1}] must have {width} inputs (previous layer's width), got {_shape(w)}")
            width = w.shape[0]
        if b.dim() != 1 or b.shape[0] != width:
            _fail(op, f"biases[{i}] must be [{width}], got {_shape(b)}")
        if not (w.dtype == b.dtype == lon_parts.dtype and w.device == b.device == lon_parts.device):
            _fail(op, f"layer {i} must match lon_parts' dtype {lon_parts.dtype} and device {lon_parts.device}")


def clip_inputs(img, loc, all_img, all_loc, scale, offset: int) -> None:
    op = "satclip::clip_loss_streaming"
    if img.dim() != 2 or loc.shape != img.shape:
        _fail(op, f"expected img and loc of one shape [b, D], got {_shape(img)} and {_shape(loc)}")
    if img.dtype not in _FLOATS:
        _fail(op, f"expected float32 or float64 features, got {img.dtype}")
    if not loc.dtype == scale.dtype == img.dtype:
        _fail(op, "img, loc and scale must share one dtype")
    if scale.dim() != 0:
        _fail(op, f"expected a 0-dim scale, got {_shape(scale)}")
    if (all_img is None) != (all_loc is None):
        _fail(op, "give both all_img and all_loc, or neither")
    if all_img is not None:
        if all_img.dim() != 2 or all_img.shape[1] != img.shape[1] or all_loc.shape != all_img.shape:
            _fail(op, f"expected all_img and all_loc of one shape [G, {img.shape[1]}], got {_shape(all_img)} "
                      f"and {_shape(all_loc)}")
        if not all_img.dtype == all_loc.dtype == img.dtype:
            _fail(op, "all_img and all_loc must have img's dtype")
        if offset < 0 or offset + img.shape[0] > all_img.shape[0]:
            _fail(op, f"offset {offset} puts this process's {img.shape[0]} rows outside the {all_img.shape[0]} "
                      "gathered rows")


def quantize_input(emb: torch.Tensor, threads: int) -> None:
    op = "satclip::quantize_int8"
    if emb.dim() != 2:
        _fail(op, f"expected embeddings of shape [N, D], got {_shape(emb)}")
    if emb.dtype != torch.float32:
        _fail(op, f"expected float32 embeddings, got {emb.dtype}")
    if threads < 0:
        _fail(op, f"threads must be >= 0 (0: torch's count), got {threads}")

"""The ``satclip`` op schemas (defined once, here), with the pure-PyTorch twins of
:mod:`.reference` registered as the fallback kernel of every op. Fake kernels are in
:mod:`.fake`, autograd formulas in :mod:`.autograd`.

The compiled library ``satclip/_C.so`` (loaded by :mod:`satclip.ops.extension` *after* this
module has defined the schemas) registers CPU and CUDA kernels for the same ops; a kernel
registered for a backend key takes precedence over the ``CompositeExplicitAutograd``
fallback, so the ops exist and agree on every machine.

Ops (all coordinates are ``[N, 2]`` (lon, lat) in degrees, lon first):

``spherical_harmonics(lonlat, L, scale=None) -> [N, L*L]`` (each feature times ``scale[k]`` when given: a
SH convention applied where the kernel stores, not in a second pass)
    Orthonormal real SH, feature ``l*l + l + m`` (see ``csrc/common/sh_math.h``).
``spherical_harmonics_backward(grad, lonlat, L) -> [N, 2]``
    ``grad @ dY/d(lon, lat)`` per point, in degrees^-1.
``siren_layer(x, weight, bias, w0, mask, save_cos) -> (y, cos)``
    ``y = sin(w0 * (x W^T + b) * mask)``; ``cos`` of the same argument when ``save_cos``
    (what the backward needs, so it never recomputes the GEMM), else an empty tensor.
``siren_layer_backward(grad_y, cos, x, weight, w0, mask, need_grad_x) -> (grad_x, grad_weight, grad_bias)``
    ``grad_x`` is an empty tensor when ``need_grad_x`` is false (the first layer's input, the
    SH features of coordinates that need no gradient: skips an ``[N, out] x [out, L*L]`` GEMM).
``location_encoder_forward(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, precision) -> [N, out]``
    Inference of the whole encoder (SH -> sine layers -> linear) in chunks of points, so the
    ``[N, L*L]`` feature matrix only exists for one chunk at a time. Not differentiable.
    ``precision``: ``"float32"`` (exact), ``"tf32"``, ``"bf16"`` or ``"float16"``: GEMM operands
    rounded to that format, products and accumulation in float32, epilogue (bias, w0, sine) in float32.
``iso_latitude_encoder_forward(lon_parts, row_weights, row_counts, weights, biases, w0_first, w0_hidden, tile_points) -> [N, out]``
    Inference of the encoder with its first layer factorised over latitude rows
    (:mod:`satclip.nn.iso_latitude`): points in rows of one latitude (``row_counts[r]`` points
    each, in order), ``lon_parts`` ``[N, 2L - 1]`` their longitude parts, ``row_weights``
    ``[rows, 2L - 1, H]`` each row's first-layer weights; the first pre-activation of row ``r`` is
    ``lon_parts[row] @ row_weights[r] + biases[0]``. ``weights``: the layers after the first (the
    last one linear), ``biases``: the first layer's and theirs. Chunks of whole rows of about
    ``tile_points`` points. Not differentiable.
``sh_siren_layer(lonlat, L, weight, bias, w0, precision) -> [N, out]``
    The first sine layer straight from the coordinates, ``sin(w0 * (SH(lonlat) W^T + b))``;
    the CUDA kernels generate the features in shared memory (1 <= L <= 64), so the ``[N, L*L]``
    matrix never reaches global memory. ``precision``: ``"float32"`` (exact, output in the
    input's dtype) or ``"bf16"`` (float32 input; bf16 operands on tensor cores, float32 sums
    and sine, a bf16 result: the next layer's operand in that mode). On CUDA,
    ``location_encoder_forward`` uses its kernels in the float32 and bf16 modes where they time
    faster than SH + cuBLAS (``SATCLIP_CUDA_FUSED``, docs/guides/precision.md). Not differentiable
    (inference).
``quantize_int8(emb, threads=0) -> (codes, scale)``
    The int8 output format's per-point quantisation of ``[N, D]`` float32 embeddings: ``scale
    [N]`` float32 = ``max|e| / 127`` per row, ``codes [N, D]`` int8 = ``round(e / scale)`` (half
    to even), so ``e ~= codes * scale`` within ``scale / 2`` (``csrc/common/quantize_int8.h``).
    ``threads``: the CPU kernel's OpenMP threads (0: torch's count; the embedding pipeline's
    writer threads ask for 1 each). Not differentiable.
``clip_loss_streaming(img, loc, all_img, all_loc, scale, offset, tile) -> (loss, ce1, ce2)``
    The symmetric CLIP loss of this process's ``[b, D]`` rows (normalised features, ``scale`` the
    exponentiated temperature) against every process's rows ``all_img``/``all_loc`` ``[G, D]``
    (None for one process), tile by tile over the keys with a running log-sum-exp: the
    ``[b, G]`` logits never exist. Differentiable w.r.t. the features (gathered ones included)
    and ``scale``; ``ce1``/``ce2`` ``[b]`` are each row's cross-entropy (image -> location,
    location -> image), computed from the negatives alone (``log(1 + sum exp(negative -
    positive))``) so that a near-zero loss keeps its relative precision; the backward needs them.
"""

from __future__ import annotations

import torch

from . import reference as ref

_lib = torch.library.Library("satclip", "DEF")  # noqa: the library object must stay alive

SCHEMAS = {
    "spherical_harmonics": "spherical_harmonics(Tensor lonlat, int legendre_polys, Tensor? scale=None) -> Tensor",
    "spherical_harmonics_backward":
        "spherical_harmonics_backward(Tensor grad, Tensor lonlat, int legendre_polys) -> Tensor",
    "siren_layer":
        "siren_layer(Tensor x, Tensor weight, Tensor bias, float w0, Tensor? mask, bool save_cos)"
        " -> (Tensor, Tensor)",
    "siren_layer_backward":
        "siren_layer_backward(Tensor grad_y, Tensor cos, Tensor x, Tensor weight, float w0, Tensor? mask,"
        " bool need_grad_x=True) -> (Tensor, Tensor, Tensor)",
    "location_encoder_forward":
        "location_encoder_forward(Tensor lonlat, int legendre_polys, Tensor[] weights, Tensor[] biases,"
        " float w0_first, float w0_hidden, int tile_points, str precision=\"float32\") -> Tensor",
    "iso_latitude_encoder_forward":
        "iso_latitude_encoder_forward(Tensor lon_parts, Tensor row_weights, int[] row_counts, Tensor[] weights,"
        " Tensor[] biases, float w0_first, float w0_hidden, int tile_points) -> Tensor",
    "sh_siren_layer":
        "sh_siren_layer(Tensor lonlat, int legendre_polys, Tensor weight, Tensor bias, float w0,"
        " str precision=\"float32\") -> Tensor",
    "quantize_int8": "quantize_int8(Tensor emb, int threads=0) -> (Tensor, Tensor)",
    "clip_loss_streaming":
        "clip_loss_streaming(Tensor img, Tensor loc, Tensor? all_img, Tensor? all_loc, Tensor scale, int offset,"
        " int tile=0) -> (Tensor, Tensor, Tensor)",
    "clip_loss_streaming_backward":
        "clip_loss_streaming_backward(Tensor grad, Tensor img, Tensor loc, Tensor? all_img, Tensor? all_loc,"
        " Tensor scale, Tensor ce1, Tensor ce2, int offset, int tile=0) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
}
for _schema in SCHEMAS.values():
    _lib.define(_schema)

# Private ops, kernels only in the compiled libraries (no tensor argument: registered as their
# composite kernel): the switches of satclip.ops.switches reach the C++ code through them, and
# satclip info reads the choices made. Without the library they are defined but have no kernel
# (satclip.ops.extension.private_op then gives None).
PRIVATE_SCHEMAS = {
    # CPU library: the kernels' instruction set ("auto", "base", "avx2", "avx512"; "" reads it)
    "_cpu_isa": "_cpu_isa(str mode=\"\") -> int",
    # CPU library: which GEMMs precision="bf16" runs ("auto", "avx512bf16", "mkl", "rounded"), and why
    "_cpu_bf16_gemm": "_cpu_bf16_gemm(str mode=\"\") -> str",
    # CUDA library: fused kernels or cuBLAS ("auto", "fused", "cublas"), and the timed choices
    "_cuda_fused": "_cuda_fused(str mode=\"\") -> str",
    # CUDA library: the bf16 kernels' shared-memory row stride (0 reads it; a GPU-check experiment)
}
for _schema in PRIVATE_SCHEMAS.values():
    _lib.define(_schema)

_REFERENCE = {
    "spherical_harmonics": ref.spherical_harmonics,
    "spherical_harmonics_backward": ref.spherical_harmonics_backward,
    "siren_layer": ref.siren_layer,
    "siren_layer_backward": ref.siren_layer_backward,
    "location_encoder_forward": ref.location_encoder_forward,
    "iso_latitude_encoder_forward": ref.iso_latitude_encoder_forward,
    "sh_siren_layer": ref.sh_siren_layer,
    "clip_loss_streaming": ref.clip_loss_streaming,
    "clip_loss_streaming_backward": ref.clip_loss_streaming_backward,
    "quantize_int8": ref.quantize_int8,
}
for _name, _fn in _REFERENCE.items():
    _lib.impl(_name, _fn, "CompositeExplicitAutograd")

ops = torch.ops.satclip

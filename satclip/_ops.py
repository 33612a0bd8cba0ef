"""The ``satclip`` op layer: schemas (defined once, here), fake kernels, autograd formulas,
and the pure-PyTorch reference registered as the fallback kernel of every op.

The compiled library ``satclip/_C.so`` (loaded by :mod:`satclip._extension` *after* this
module has defined the schemas) registers CPU and CUDA kernels for the same ops; a kernel
registered for a backend key takes precedence over the ``CompositeExplicitAutograd``
fallback, so the ops exist and agree on every machine.

Ops (all coordinates are ``[N, 2]`` (lon, lat) in degrees, lon first):

``spherical_harmonics(lonlat, L) -> [N, L*L]``
    Orthonormal real SH, feature ``l*l + l + m`` (see ``csrc/sh_math.h``).
``spherical_harmonics_backward(grad, lonlat, L) -> [N, 2]``
    ``grad @ dY/d(lon, lat)`` per point, in degrees^-1.
``siren_layer(x, weight, bias, w0, mask, save_cos) -> (y, cos)``
    ``y = sin(w0 * (x W^T + b) * mask)``; ``cos`` of the same argument when ``save_cos``
    (what the backward needs, so it never recomputes the GEMM), else an empty tensor.
``siren_layer_backward(grad_y, cos, x, weight, w0, mask, need_grad_x) -> (grad_x, grad_weight, grad_bias)``
    ``grad_x`` is an empty tensor when ``need_grad_x`` is false (the first layer's input, the
    SH features of coordinates that need no gradient: skips an ``[N, out] x [out, L*L]`` GEMM).
``location_encoder_forward(lonlat, L, weights, biases, w0_first, w0_hidden, chunk_size, precision) -> [N, out]``
    Inference of the whole encoder (SH -> sine layers -> linear) in chunks of points, so the
    ``[N, L*L]`` feature matrix only exists for one chunk at a time. Not differentiable.
    ``precision``: ``"float32"`` (exact), ``"tf32"`` or ``"bf16"``: GEMM operands rounded to
    that format, products and accumulation in float32, epilogue (bias, w0, sine) in float32.
``sh_siren_layer(lonlat, L, weight, bias, w0, precision) -> [N, out]``
    The first sine layer straight from the coordinates, ``sin(w0 * (SH(lonlat) W^T + b))``;
    the CUDA kernels generate the features in shared memory (1 <= L <= 64), so the ``[N, L*L]``
    matrix never reaches global memory. ``precision``: ``"float32"`` (exact, output in the
    input's dtype) or ``"bf16"`` (float32 input; bf16 operands on tensor cores, float32 sums
    and sine, a bf16 result: the next layer's operand in that mode). On CUDA,
    ``location_encoder_forward`` uses its kernels in the float32 and bf16 modes where they time
    faster than SH + cuBLAS (``SATCLIP_CUDA_FUSED`` in the README). Not differentiable
    (inference).
"""

from __future__ import annotations

import torch

from . import _reference as ref

_lib = torch.library.Library("satclip", "DEF")  # noqa: the library object must stay alive

_SCHEMAS = {
    "spherical_harmonics": "spherical_harmonics(Tensor lonlat, int legendre_polys) -> Tensor",
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
        " float w0_first, float w0_hidden, int chunk_size, str precision=\"float32\") -> Tensor",
    "sh_siren_layer":
        "sh_siren_layer(Tensor lonlat, int legendre_polys, Tensor weight, Tensor bias, float w0,"
        " str precision=\"float32\") -> Tensor",
}
for _schema in _SCHEMAS.values():
    _lib.define(_schema)

_REFERENCE = {
    "spherical_harmonics": ref.spherical_harmonics,
    "spherical_harmonics_backward": ref.spherical_harmonics_backward,
    "siren_layer": ref.siren_layer,
    "siren_layer_backward": ref.siren_layer_backward,
    "location_encoder_forward": ref.location_encoder_forward,
    "sh_siren_layer": ref.sh_siren_layer,
}
for _name, _fn in _REFERENCE.items():
    _lib.impl(_name, _fn, "CompositeExplicitAutograd")

ops = torch.ops.satclip


# ---------------------------------------------------------------------------- fake kernels
@torch.library.register_fake("satclip::spherical_harmonics")
def _sh_fake(lonlat, legendre_polys):
    return lonlat.new_empty(lonlat.shape[0], legendre_polys * legendre_polys)


@torch.library.register_fake("satclip::spherical_harmonics_backward")
def _sh_bwd_fake(grad, lonlat, legendre_polys):
    return torch.empty_like(lonlat, memory_format=torch.contiguous_format)


@torch.library.register_fake("satclip::siren_layer")
def _siren_fake(x, weight, bias, w0, mask, save_cos):
    y = x.new_empty(x.shape[0], weight.shape[0])
    return y, (x.new_empty(x.shape[0], weight.shape[0]) if save_cos else x.new_empty(0))


@torch.library.register_fake("satclip::siren_layer_backward")
def _siren_bwd_fake(grad_y, cos, x, weight, w0, mask, need_grad_x=True):
    return (x.new_empty(x.shape) if need_grad_x else x.new_empty(0), weight.new_empty(weight.shape),
            weight.new_empty(weight.shape[0]))


@torch.library.register_fake("satclip::location_encoder_forward")
def _encoder_fake(lonlat, legendre_polys, weights, biases, w0_first, w0_hidden, chunk_size, precision="float32"):
    return lonlat.new_empty(lonlat.shape[0], weights[-1].shape[0])


@torch.library.register_fake("satclip::sh_siren_layer")
def _sh_siren_fake(lonlat, legendre_polys, weight, bias, w0, precision="float32"):
    dtype = torch.bfloat16 if precision == "bf16" else lonlat.dtype
    return lonlat.new_empty(lonlat.shape[0], weight.shape[0], dtype=dtype)


# ---------------------------------------------------------------------------- autograd
def _sh_setup(ctx, inputs, output):
    lonlat, L = inputs
    ctx.save_for_backward(lonlat)
    ctx.L = L


def _sh_backward(ctx, grad):
    (lonlat,) = ctx.saved_tensors
    return ops.spherical_harmonics_backward(grad.contiguous(), lonlat, ctx.L), None


torch.library.register_autograd("satclip::spherical_harmonics", _sh_backward, setup_context=_sh_setup)


def _sh_bwd_setup(ctx, inputs, output):
    grad, lonlat, L = inputs
    ctx.save_for_backward(grad, lonlat)
    ctx.L = L


def _sh_bwd_backward(ctx, gg):
    # Double backward (rare: gradient penalties, Hessian-vector products) goes through the
    # differentiable reference; the first-order path above stays on the kernels.
    grad, lonlat = ctx.saved_tensors
    with torch.enable_grad():
        g = grad.detach().requires_grad_(True)
        x = lonlat.detach().requires_grad_(True)
        out = ref.spherical_harmonics_backward(g, x, ctx.L)
        dg, dx = torch.autograd.grad(out, (g, x), gg, allow_unused=True)
    return dg, dx, None


torch.library.register_autograd("satclip::spherical_harmonics_backward", _sh_bwd_backward,
                                setup_context=_sh_bwd_setup)


def _siren_setup(ctx, inputs, output):
    x, weight, bias, w0, mask, save_cos = inputs
    ctx.save_for_backward(x, weight, mask, output[1])
    ctx.w0 = w0
    ctx.mark_non_differentiable(output[1])


def _siren_backward(ctx, grad_y, _grad_cos):
    x, weight, mask, cos = ctx.saved_tensors
    if cos.numel() != grad_y.numel():
        raise RuntimeError("satclip::siren_layer: gradients need save_cos=True (the cosine is what "
                           "the backward uses); satclip.functional.siren_layer sets it for you")
    need_x = ctx.needs_input_grad[0]
    gx, gw, gb = ops.siren_layer_backward(grad_y.contiguous(), cos, x, weight, ctx.w0, mask, need_x)
    return (gx if need_x else None), gw, gb, None, None, None


torch.library.register_autograd("satclip::siren_layer", _siren_backward, setup_context=_siren_setup)


def _siren_bwd_setup(ctx, inputs, output):
    pass


def _siren_bwd_backward(ctx, *grads):
    raise RuntimeError("satclip::siren_layer_backward: double backward through a SIREN layer is "
                       "not implemented; the pure-PyTorch twins in satclip._reference support it")


torch.library.register_autograd("satclip::siren_layer_backward", _siren_bwd_backward,
                                setup_context=_siren_bwd_setup)


def _encoder_setup(ctx, inputs, output):
    pass


def _encoder_backward(ctx, grad):
    raise RuntimeError("satclip::location_encoder_forward is the fused inference path and has no "
                       "backward; call the encoder in training mode or with fused=False to train")


torch.library.register_autograd("satclip::location_encoder_forward", _encoder_backward,
                                setup_context=_encoder_setup)


def _sh_siren_backward(ctx, grad):
    raise RuntimeError("satclip::sh_siren_layer is an inference op and has no backward; for gradients "
                       "compose spherical_harmonics and siren_layer (satclip.functional does)")


torch.library.register_autograd("satclip::sh_siren_layer", _sh_siren_backward, setup_context=_encoder_setup)

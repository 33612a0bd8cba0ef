"""Autograd formulas of the ``satclip`` ops (``torch.library.register_autograd``).

First-order gradients run on the compiled kernels (the ``*_backward`` ops); double backward
of the SH goes through the differentiable pure-PyTorch twin. The fused inference ops refuse
to be differentiated, with a message that says what to call instead.
"""

from __future__ import annotations

import torch

from . import reference as ref
from .schemas import ops

def _sh_setup(ctx, inputs, output):
    lonlat, L, scale = inputs
    if scale is not None and scale.requires_grad:
        raise ValueError("satclip::spherical_harmonics: scale is a constant (a convention's per-feature factors); "
                         "it does not take gradients")
    ctx.save_for_backward(lonlat, scale)
    ctx.L = L


def _sh_backward(ctx, grad):
    lonlat, scale = ctx.saved_tensors
    if scale is not None:
        grad = grad * scale
    return ops.spherical_harmonics_backward(grad.contiguous(), lonlat, ctx.L), None, None


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
                       "not implemented; the pure-PyTorch twins in satclip.ops.reference support it")


torch.library.register_autograd("satclip::siren_layer_backward", _siren_bwd_backward,
                                setup_context=_siren_bwd_setup)


def _encoder_setup(ctx, inputs, output):
    pass


def _encoder_backward(ctx, grad):
    raise RuntimeError("satclip::location_encoder_forward is the fused inference path and has no "
                       "backward; call the encoder in training mode or with fused=False to train")


torch.library.register_autograd("satclip::location_encoder_forward", _encoder_backward,
                                setup_context=_encoder_setup)


def _iso_latitude_backward(ctx, grad):
    raise RuntimeError("satclip::iso_latitude_encoder_forward is an inference op and has no backward; call the "
                       "encoder in training mode or with fused=False to train")


torch.library.register_autograd("satclip::iso_latitude_encoder_forward", _iso_latitude_backward,
                                setup_context=_encoder_setup)


def _sh_siren_backward(ctx, grad):
    raise RuntimeError("satclip::sh_siren_layer is an inference op and has no backward; for gradients "
                       "compose spherical_harmonics and siren_layer (satclip.functional does)")


torch.library.register_autograd("satclip::sh_siren_layer", _sh_siren_backward, setup_context=_encoder_setup)


def _clip_setup(ctx, inputs, output):
    img, loc, all_img, all_loc, scale, offset, tile = inputs
    _, ce1, ce2 = output
    ctx.save_for_backward(img, loc, all_img, all_loc, scale, ce1, ce2)
    ctx.offset, ctx.tile = offset, tile
    ctx.mark_non_differentiable(ce1, ce2)


def _clip_backward(ctx, grad, _g1, _g2):
    img, loc, all_img, all_loc, scale, ce1, ce2 = ctx.saved_tensors
    g_img, g_loc, g_all_img, g_all_loc, g_scale = ops.clip_loss_streaming_backward(
        grad, img, loc, all_img, all_loc, scale, ce1, ce2, ctx.offset, ctx.tile)
    gathered = all_img is not None
    return (g_img, g_loc, g_all_img if gathered else None, g_all_loc if gathered else None, g_scale, None, None)


torch.library.register_autograd("satclip::clip_loss_streaming", _clip_backward, setup_context=_clip_setup)


def _clip_bwd_backward(ctx, *grads):
    raise RuntimeError("satclip::clip_loss_streaming_backward: double backward through the streaming CLIP loss is "
                       "not implemented; use the materialised loss (satclip.training.loss, streaming=False)")


torch.library.register_autograd("satclip::clip_loss_streaming_backward", _clip_bwd_backward,
                                setup_context=_siren_bwd_setup)

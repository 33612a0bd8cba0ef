"""Fake (meta) kernels of the ``satclip`` ops: output shapes and dtypes without computing,
for torch.compile, FakeTensor tracing and ``torch.library.opcheck``."""

from __future__ import annotations

import torch

from . import schemas  # noqa: F401  (the schemas must exist first)

@torch.library.register_fake("satclip::spherical_harmonics")
def _sh_fake(lonlat, legendre_polys, scale=None):
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
def _encoder_fake(lonlat, legendre_polys, weights, biases, w0_first, w0_hidden, tile_points, precision="float32"):
    return lonlat.new_empty(lonlat.shape[0], weights[-1].shape[0])


@torch.library.register_fake("satclip::iso_latitude_encoder_forward")
def _iso_latitude_fake(lon_parts, row_weights, row_counts, weights, biases, w0_first, w0_hidden, tile_points):
    return lon_parts.new_empty(lon_parts.shape[0], weights[-1].shape[0])


@torch.library.register_fake("satclip::clip_loss_streaming")
def _clip_fake(img, loc, all_img, all_loc, scale, offset, tile=0):
    return img.new_empty(()), img.new_empty(img.shape[0]), img.new_empty(img.shape[0])


@torch.library.register_fake("satclip::clip_loss_streaming_backward")
def _clip_bwd_fake(grad, img, loc, all_img, all_loc, scale, ce1, ce2, offset, tile=0):
    gathered = all_img is not None
    return (torch.empty_like(img), torch.empty_like(loc),
            torch.empty_like(all_img) if gathered else img.new_empty(0),
            torch.empty_like(all_loc) if gathered else img.new_empty(0), img.new_empty(()))


@torch.library.register_fake("satclip::sh_siren_layer")
def _sh_siren_fake(lonlat, legendre_polys, weight, bias, w0, precision="float32"):
    dtype = torch.bfloat16 if precision == "bf16" else lonlat.dtype
    return lonlat.new_empty(lonlat.shape[0], weight.shape[0], dtype=dtype)


@torch.library.register_fake("satclip::quantize_int8")
def _quantize_int8_fake(emb, threads=0):
    return emb.new_empty(emb.shape, dtype=torch.int8), emb.new_empty(emb.shape[:1], dtype=torch.float32)

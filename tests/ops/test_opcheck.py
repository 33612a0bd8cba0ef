"""torch.library.opcheck on every satclip op (schema, fake tensors, autograd registration,
AOT dispatch), with contiguous, strided and requires-grad samples."""

import pytest
import torch

from conftest import lonlat_points

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ops = torch.ops.satclip


def _siren_args(device, dtype, grad):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 7, generator=g, dtype=dtype).to(device)
    w = torch.randn(5, 7, generator=g, dtype=dtype).to(device)
    b = torch.randn(5, generator=g, dtype=dtype).to(device)
    if grad:
        x, w, b = (t.requires_grad_(True) for t in (x, w, b))
    return x, w, b


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck_spherical_harmonics(device, dtype):
    x = lonlat_points(20, dtype=dtype).to(device)
    torch.library.opcheck(ops.spherical_harmonics.default, (x, 6))
    torch.library.opcheck(ops.spherical_harmonics.default, (x.clone().requires_grad_(True), 5))
    torch.library.opcheck(ops.spherical_harmonics.default, (x.t().contiguous().t(), 4))  # strided
    scale = torch.linspace(-2, 3, 25, dtype=dtype, device=device)  # a convention's per-feature factors
    torch.library.opcheck(ops.spherical_harmonics.default, (x.clone().requires_grad_(True), 5, scale))
    g = torch.randn(x.shape[0], 16, dtype=dtype, device=device)
    torch.library.opcheck(ops.spherical_harmonics_backward.default, (g, x, 4))
    torch.library.opcheck(ops.spherical_harmonics_backward.default,
                          (g.requires_grad_(True), x.clone().requires_grad_(True), 4))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck_siren_layer(device, dtype):
    x, w, b = _siren_args(device, dtype, grad=False)
    mask = torch.ones(9, 5, dtype=dtype, device=device) * 2
    torch.library.opcheck(ops.siren_layer.default, (x, w, b, 30.0, None, False))
    torch.library.opcheck(ops.siren_layer.default, (x, w, b, 30.0, mask, True))
    xg, wg, bg = _siren_args(device, dtype, grad=True)
    torch.library.opcheck(ops.siren_layer.default, (xg, wg, bg, 1.0, None, True))
    y, c = ops.siren_layer(x, w, b, 30.0, None, True)
    torch.library.opcheck(ops.siren_layer_backward.default, (torch.randn_like(y), c, x, w, 30.0, mask))
    torch.library.opcheck(ops.siren_layer_backward.default, (torch.randn_like(y), c, x, w, 30.0, mask, False))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck_location_encoder_forward(device, dtype):
    L = 4
    g = torch.Generator().manual_seed(2)
    ws = [torch.randn(8, L * L, generator=g, dtype=dtype), torch.randn(8, 8, generator=g, dtype=dtype),
          torch.randn(3, 8, generator=g, dtype=dtype)]
    bs = [torch.randn(8, generator=g, dtype=dtype), torch.randn(8, generator=g, dtype=dtype),
          torch.randn(3, generator=g, dtype=dtype)]
    ws, bs = [w.to(device) for w in ws], [b.to(device) for b in bs]
    x = lonlat_points(30, dtype=dtype).to(device)
    torch.library.opcheck(ops.location_encoder_forward.default, (x, L, ws, bs, 30.0, 1.0, 16))

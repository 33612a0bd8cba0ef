"""The SIREN layer op (GEMM + fused bias/w0/mask/sine epilogue): kernel vs twin vs float64."""

import math

import numpy as np
import pytest
import torch

from conftest import needs_compiled_cpu
from satclip.ops import reference as ref
from satclip import functional as F
from satclip.ops import ops


def _inputs(n=37, d_in=50, d_out=24, dtype=torch.float64, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g, dtype=torch.float64).to(dtype)
    w = (torch.randn(d_out, d_in, generator=g, dtype=torch.float64) * scale / math.sqrt(d_in)).to(dtype)
    b = (torch.randn(d_out, generator=g, dtype=torch.float64) * scale).to(dtype)
    mask = (torch.rand(n, d_out, generator=g, dtype=torch.float64) > 0.5).to(dtype) * 2
    return x, w, b, mask


@needs_compiled_cpu
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 2e-5)])
@pytest.mark.parametrize("w0", [1.0, 30.0])
@pytest.mark.parametrize("use_mask", [False, True])
def test_forward_kernel_vs_float64(dtype, tol, w0, use_mask):
    x, w, b, mask = _inputs(dtype=torch.float64)
    m64 = mask if use_mask else None
    y64, c64 = ref.siren_layer(x, w, b, w0, m64, True)
    y, c = ops.siren_layer(x.to(dtype), w.to(dtype), b.to(dtype), w0, m64.to(dtype) if use_mask else None, True)
    assert y.dtype == dtype and c.shape == y.shape
    # float32: the argument w0 * z carries the GEMM's rounding (~1e-6 * w0), the sine adds ~1 ulp
    assert (y.double() - y64).abs().max().item() < tol * w0
    assert (c.double() - c64).abs().max().item() < tol * w0


@needs_compiled_cpu
def test_no_cos_when_not_asked():
    x, w, b, _ = _inputs()
    y, c = ops.siren_layer(x, w, b, 30.0, None, False)
    assert c.numel() == 0
    assert torch.allclose(y, torch.sin(30.0 * (x @ w.t() + b)), atol=1e-13)


@needs_compiled_cpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_arguments_fall_back_to_libm(dtype):
    # arguments beyond the fast range reduction's bound take the exact path
    x, w, b, _ = _inputs(n=8, d_in=4, d_out=300, dtype=dtype, scale=1e5)
    y, c = ops.siren_layer(x, w, b, 30.0, None, True)
    arg = 30.0 * (x.double() @ w.double().t() + b.double())
    assert arg.abs().max() > 1e5
    # the same float GEMM and the same rounding of w0 * z as the kernel, then an exact sine
    ref_y = torch.sin((30.0 * torch.addmm(b, x, w.t())).double())
    assert torch.isfinite(y).all()
    assert (y.double() - ref_y).abs().max().item() < (1e-12 if dtype == torch.float64 else 1e-5)


@needs_compiled_cpu
def test_float32_sine_within_2_5_ulp_on_its_fast_range():
    # The float32 epilogue computes sin/cos in float arithmetic for |w0 z| <= 4096 (libm beyond):
    # a dense sweep and the awkward points (multiples of pi/2, tiny, the range's ends and past
    # them) against float64 sin/cos of the same float32 argument.
    sweep = torch.linspace(-4096, 4096, 1_000_001, dtype=torch.float64)
    special = torch.cat([torch.arange(-2608, 2609, dtype=torch.float64) * (math.pi / 2),
                         torch.tensor([0.0, 1e-30, -1e-8, 4096.0, -4096.0, 4096.5, 1e5, -3e5], dtype=torch.float64)])
    a = torch.cat([sweep, special]).float()
    y, c = ops.siren_layer(a[:, None], torch.ones(1, 1), torch.zeros(1), 1.0, None, True)
    for got, want in ((y[:, 0], torch.sin(a.double())), (c[:, 0], torch.cos(a.double()))):
        spacing = torch.from_numpy(np.spacing(want.abs().clamp_min(2.0 ** -20).float().numpy())).double()
        assert ((got.double() - want).abs() / spacing).max().item() < 2.5


@needs_compiled_cpu
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_backward_kernel_vs_reference(dtype, tol):
    x, w, b, mask = _inputs(dtype=dtype)
    _, c = ref.siren_layer(x, w, b, 30.0, mask, True)
    gy = torch.randn_like(c)
    got = ops.siren_layer_backward(gy, c, x, w, 30.0, mask)
    want = ref.siren_layer_backward(gy, c, x, w, 30.0, mask)
    for a, e in zip(got, want):
        assert a.shape == e.shape
        assert ((a - e).abs().max() / (e.abs().max() + 1)).item() < tol


def test_backward_skips_grad_x_when_the_input_needs_none():
    """The first layer's input (SH features of coordinates without gradient) gets no grad_x
    GEMM; the weight and bias gradients are unchanged."""
    x, w, b, mask = _inputs()
    _, c = ref.siren_layer(x, w, b, 30.0, mask, True)
    gy = torch.randn_like(c)
    full = ops.siren_layer_backward(gy, c, x, w, 30.0, mask)
    part = ops.siren_layer_backward(gy, c, x, w, 30.0, mask, False)
    assert part[0].numel() == 0
    assert torch.equal(part[1], full[1]) and torch.equal(part[2], full[2])
    wg, bg = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    ops.siren_layer(x, wg, bg, 30.0, mask, True)[0].backward(gy)  # x needs no gradient here
    assert torch.allclose(wg.grad, full[1]) and torch.allclose(bg.grad, full[2])


def test_gradcheck_siren_layer():
    x, w, b, mask = _inputs(n=5, d_in=6, d_out=4)
    args = [t.clone().requires_grad_(True) for t in (x, w, b)]
    for m in (None, mask):
        assert torch.autograd.gradcheck(lambda a, ww, bb: ops.siren_layer(a, ww, bb, 3.0, m, True)[0], args)


def test_functional_saves_cos_only_when_needed():
    x, w, b, _ = _inputs()
    with torch.no_grad():
        y = F.siren_layer(x, w, b, 30.0)
    assert torch.allclose(y, torch.sin(30.0 * (x @ w.t() + b)), atol=1e-12)
    wr = w.clone().requires_grad_(True)
    F.siren_layer(x, wr, b, 30.0).sum().backward()
    assert wr.grad is not None and torch.isfinite(wr.grad).all()


def test_backward_without_saved_cos_is_a_clear_error():
    x, w, b, _ = _inputs()
    wr = w.clone().requires_grad_(True)
    y, _ = ops.siren_layer(x, wr, b, 30.0, None, False)
    with pytest.raises(RuntimeError, match="save_cos=True"):
        y.sum().backward()

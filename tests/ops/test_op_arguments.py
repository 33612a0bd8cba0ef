"""Bad arguments to every op get the same RuntimeError, naming the argument and what was
expected, from the compiled kernels and from the pure-PyTorch twins (which run with
SATCLIP_DISABLE_EXTENSION=1, without a compiled library, or on a device without a kernel)."""

import pytest
import torch

from conftest import lonlat_points
from satclip.ops import ops
from satclip.ops import reference as ref

IMPLS = ["dispatched", "reference"]  # the op as callers meet it (compiled where loaded) and the twin
f64 = dict(dtype=torch.float64)


def _fn(impl, name):
    return getattr(ops, name) if impl == "dispatched" else getattr(ref, name)


def _layer(L, H, dtype=torch.float64):
    return torch.zeros(H, L * L, dtype=dtype), torch.zeros(H, dtype=dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("args,match", [
    ((torch.zeros(3, 3, **f64), 4), r"lonlat of shape \[N, 2\]"),
    ((torch.zeros(3, 2, dtype=torch.float16), 4), "float32 or float64"),
    ((torch.zeros(3, 2, **f64), -1), r"legendre_polys must be in \[1, 4096\]"),
    ((torch.zeros(3, 2, **f64), 0), r"legendre_polys must be in \[1, 4096\]"),  # as satclip.functional
])
def test_spherical_harmonics(impl, args, match):
    with pytest.raises(RuntimeError, match=match):
        _fn(impl, "spherical_harmonics")(*args)


@pytest.mark.parametrize("impl", IMPLS)
def test_spherical_harmonics_backward(impl):
    x = lonlat_points(5)
    with pytest.raises(RuntimeError, match=r"expected grad of shape \[18, 16\]"):
        _fn(impl, "spherical_harmonics_backward")(torch.zeros(18, 9, **f64), x, 4)
    with pytest.raises(RuntimeError, match="grad dtype"):
        _fn(impl, "spherical_harmonics_backward")(torch.zeros(18, 16), x, 4)


def _siren_inputs():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(7, 5, generator=g, **f64), torch.randn(3, 5, generator=g, **f64),
            torch.randn(3, generator=g, **f64))


@pytest.mark.parametrize("impl", IMPLS)
def test_siren_layer(impl):
    x, w, b = _siren_inputs()
    fn = _fn(impl, "siren_layer")
    with pytest.raises(RuntimeError, match=r"weight of shape \[out, 5\]"):
        fn(x, w.t().contiguous(), b, 1.0, None, False)
    with pytest.raises(RuntimeError, match=r"bias of shape \[3\]"):
        fn(x, w, b[:2], 1.0, None, False)
    with pytest.raises(RuntimeError, match=r"mask of shape \[7, 3\]"):
        fn(x, w, b, 1.0, torch.ones(2, 2, **f64), False)
    with pytest.raises(RuntimeError, match="share one dtype"):
        fn(x.float(), w, b, 1.0, None, False)


@pytest.mark.parametrize("impl", IMPLS)
def test_siren_layer_backward(impl):
    x, w, _ = _siren_inputs()
    with pytest.raises(RuntimeError, match=r"grad_y and cos of shape \[7, 3\]"):
        _fn(impl, "siren_layer_backward")(torch.zeros(7, 4, **f64), torch.zeros(7, 4, **f64), x, w, 1.0, None)


@pytest.mark.parametrize("impl", IMPLS)
def test_sh_siren_layer(impl):
    x = lonlat_points(10)
    w, b = _layer(5, 8)
    fn = _fn(impl, "sh_siren_layer")
    with pytest.raises(RuntimeError, match=r"weight of shape \[out, 16\]"):
        fn(x, 4, w, b, 30.0)
    with pytest.raises(RuntimeError, match=r"bias of shape \[8\]"):
        fn(x, 5, w, b[:3], 30.0)
    with pytest.raises(RuntimeError, match="must match lonlat's dtype"):
        fn(x, 5, w.float(), b.float(), 30.0)
    with pytest.raises(RuntimeError, match=r"lonlat of shape \[N, 2\]"):
        fn(x[:, :1], 5, w, b, 30.0)
    w4, b4 = _layer(4, 8)
    with pytest.raises(RuntimeError, match="precision 'bf16' needs float32 inputs"):
        fn(x, 4, w4, b4, 30.0, "bf16")
    with pytest.raises(RuntimeError, match="precision must be 'float32' or 'bf16', got 'tf32'"):
        fn(x.float(), 4, w4.float(), b4.float(), 30.0, "tf32")


@pytest.mark.parametrize("impl", IMPLS)
def test_location_encoder_forward(impl):
    x = lonlat_points(10).float()
    w = [torch.zeros(4, 4), torch.zeros(2, 4)]
    b = [torch.zeros(4), torch.zeros(2)]
    fn = _fn(impl, "location_encoder_forward")
    with pytest.raises(RuntimeError, match="precision must be one of 'float32', 'tf32', 'bf16', 'float16', got 'int8'"):
        fn(x, 2, w, b, 30.0, 1.0, 16, "int8")
    with pytest.raises(RuntimeError, match="precision 'tf32' needs float32 inputs"):
        fn(x.double(), 2, [t.double() for t in w], [t.double() for t in b], 30.0, 1.0, 16, "tf32")
    with pytest.raises(RuntimeError, match=r"weights\[0\] must have 9 inputs"):
        fn(x, 3, w, b, 30.0, 1.0, 16, "float32")
    with pytest.raises(RuntimeError, match=r"biases\[1\] must be \[2\]"):
        fn(x, 2, w, [b[0], torch.zeros(3)], 30.0, 1.0, 16, "float32")
    with pytest.raises(RuntimeError, match="tile_points must be positive"):
        fn(x, 2, w, b, 30.0, 1.0, 0, "float32")
    with pytest.raises(RuntimeError, match="as many biases as weights"):
        fn(x, 2, w, b[:1], 30.0, 1.0, 16, "float32")

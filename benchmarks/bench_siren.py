"""One SIREN layer sin(w0 (x W^T + b)), width 512: compiled (GEMM + fused epilogue) vs the
pure-PyTorch fallback, forward and forward+backward."""

import pytest
import torch

from conftest import run, size
from satclip.ops import reference as ref
from satclip.ops import ops

DTYPES = {"fp32": torch.float32, "fp64": torch.float64}


def _args(n, d_in, d_out, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d_in, generator=g).to(dtype)
    w = (torch.rand(d_out, d_in, generator=g) * 2 - 1).to(dtype) * (6 / d_in) ** 0.5
    b = torch.zeros(d_out, dtype=dtype)
    return x, w, b


@pytest.mark.parametrize("impl", ["compiled", "fallback"])
@pytest.mark.parametrize("dt", list(DTYPES))
def bench_siren_forward(benchmark, dt, impl):
    benchmark.group = f"siren-fwd-512x512-{dt}"
    n = size(16384)
    x, w, b = _args(n, 512, 512, DTYPES[dt])
    fn = ops.siren_layer if impl == "compiled" else ref.siren_layer
    run(benchmark, lambda: fn(x, w, b, 1.0, None, False), n_points=n, impl=impl, dtype=dt)


@pytest.mark.parametrize("impl", ["compiled", "fallback"])
@pytest.mark.parametrize("dt", list(DTYPES))
def bench_siren_forward_backward(benchmark, dt, impl):
    benchmark.group = f"siren-fwdbwd-512x512-{dt}"
    n = size(16384)
    x, w, b = _args(n, 512, 512, DTYPES[dt])
    gy = torch.randn(n, 512, dtype=DTYPES[dt])

    def step():
        if impl == "compiled":
            y, c = ops.siren_layer(x, w, b, 1.0, None, True)
            return ops.siren_layer_backward(gy, c, x, w, 1.0, None)
        y, c = ref.siren_layer(x, w, b, 1.0, None, True)
        return ref.siren_layer_backward(gy, c, x, w, 1.0, None)

    run(benchmark, step, n_points=n, impl=impl, dtype=dt)

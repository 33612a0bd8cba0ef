"""GPU benchmarks (skipped without CUDA): SH forward / forward+backward, the fused encoder
forward at N = 2^22 and 2^24, and a training step, each against the pure-PyTorch path eager and
(encoder) under torch.compile(mode="max-autotune") in the same run.

Run by benchmarks/gpu_check.sh on the GPU machine; results are committed under
benchmarks/results/ with the device named."""

import os

import pytest
import torch

from conftest import HAS_CUDA, points, run, size
from satclip.ops import reference as ref
from satclip import functional as F
from satclip.ops import extension, ops
from satclip.nn import LocationEncoder

pytestmark = pytest.mark.cuda
AUTOTUNE = os.environ.get("SATCLIP_BENCH_AUTOTUNE", "1") not in ("", "0")


@pytest.mark.parametrize("impl", ["compiled", "fallback"])
@pytest.mark.parametrize("L", [10, 40])
def bench_gpu_sh_forward(benchmark, L, impl):
    benchmark.group = f"gpu-sh-fwd-L{L}-fp32"
    n = size(1 << 20, 1024)
    x = points(n, torch.float32, "cuda")
    fn = (lambda: ops.spherical_harmonics(x, L)) if impl == "compiled" else (lambda: ref.spherical_harmonics(x, L))
    run(benchmark, fn, n_points=n, device="cuda", impl=impl, L=L, bytes_written=n * L * L * 4)


@pytest.mark.parametrize("impl", ["compiled", "fallback"])
def bench_gpu_sh_forward_backward(benchmark, impl):
    L = 40
    benchmark.group = f"gpu-sh-fwdbwd-L{L}-fp32"
    n = size(1 << 18, 1024)
    x = points(n, torch.float32, "cuda")
    g = torch.randn(n, L * L, device="cuda")
    sh = ops.spherical_harmonics if impl == "compiled" else ref.spherical_harmonics

    def step():
        xr = x.clone().requires_grad_(True)
        sh(xr, L).backward(g)
        return xr.grad

    run(benchmark, step, n_points=n, device="cuda", impl=impl, L=L)


def _encoder(L, dtype=torch.float32):
    torch.manual_seed(0)
    enc = LocationEncoder(L, 512, 2, 256).to(dtype).cuda().eval()
    w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
    b = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
    return enc, w, b


@pytest.mark.parametrize("impl", ["on-chip-sh", "sh-then-cublas"])
@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
@pytest.mark.parametrize("L", [10, 40])
def bench_gpu_first_layer(benchmark, L, dtype, impl):
    """SH -> first sine layer (hidden 512): the fused kernel that keeps the features in shared
    memory against the SH kernel writing [N, L*L] + cuBLAS + the sine pass. The encoder's exact
    modes use the former; this group says whether that is the faster choice."""
    benchmark.group = f"gpu-first-layer-L{L}-H512-{dtype}"
    dt = torch.float32 if dtype == "fp32" else torch.float64
    n = size(1 << 20, 1024)
    enc, w, b = _encoder(L, dt)
    x = points(n, dt, "cuda")
    if impl == "on-chip-sh":
        fn = lambda: ops.sh_siren_layer(x, L, w[0], b[0], 30.0)  # noqa: E731
    else:
        fn = lambda: ops.siren_layer(ops.spherical_harmonics(x, L), w[0], b[0], 30.0, None, False)[0]  # noqa: E731
    with torch.no_grad():
        run(benchmark, fn, n_points=n, device="cuda", impl=impl, L=L, rounds=5)


@pytest.mark.parametrize("impl", ["fused", "fused-tf32", "fused-bf16", "fallback", "compile-max-autotune",
                                  "compile-max-autotune-bf16"])
@pytest.mark.parametrize("log2n", [22, 24])
@pytest.mark.parametrize("L", [10, 40])
def bench_gpu_encoder_forward(benchmark, L, log2n, impl):
    benchmark.group = f"gpu-encoder-fwd-L{L}-N2^{log2n}-fp32"
    if impl != "fused" and log2n > 22:
        pytest.skip("baselines at N = 2^22 only (time budget of the GPU check)")
    if impl.startswith("compile-max-autotune") and not AUTOTUNE:
        pytest.skip("SATCLIP_BENCH_AUTOTUNE=0")
    n = size(1 << log2n, 4096)
    enc, w, b = _encoder(L)
    x = points(n, torch.float32, "cuda")
    chunk = 1 << 16
    with torch.no_grad():
        if impl.startswith("fused"):
            enc.precision = impl.split("-")[1] if "-" in impl else "float32"
            fn = lambda: enc(x)  # noqa: E731
        else:
            def eager(xx):
                return ref.location_encoder_forward(xx, L, w, b, 30.0, 1.0, chunk)
            if impl == "fallback":
                fn = lambda: eager(x)  # noqa: E731
            else:
                mode = "bf16" if impl.endswith("bf16") else "float32"  # the reference's rounded operands
                compiled = torch.compile(
                    lambda xx: ref.location_encoder_forward(xx, L, w, b, 30.0, 1.0, xx.shape[0], mode),
                    mode="max-autotune", dynamic=False)
                xs = [x[i:i + chunk] for i in range(0, n, chunk)]
                fn = lambda: torch.cat([compiled(c) for c in xs])  # noqa: E731
                fn()  # compile outside the timing
        run(benchmark, fn, n_points=n, device="cuda", impl=impl, L=L, rounds=3)


@pytest.mark.parametrize("kernels", ["fused", "cublas"])
@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("L", [10, 40])
def bench_gpu_encoder_fused_or_cublas(benchmark, L, precision, kernels):
    """The encoder with this package's fused layer kernels forced, or cuBLAS + elementwise
    passes forced (the choice SATCLIP_CUDA_FUSED=auto makes by timing both on the first chunk)."""
    benchmark.group = f"gpu-encoder-fused-or-cublas-L{L}-N2^22-{precision}"
    n = size(1 << 22, 4096)
    enc, w, b = _encoder(L)
    enc.precision = precision
    x = points(n, torch.float32, "cuda")
    before = extension.cuda_fused_mode()
    ops._cuda_fused(kernels)
    try:
        with torch.no_grad():
            run(benchmark, lambda: enc(x), n_points=n, device="cuda", impl=f"{precision}-{kernels}", L=L, rounds=3)
    finally:
        ops._cuda_fused(before)


@pytest.mark.parametrize("chunk", [1 << 13, 1 << 14, 1 << 16, 1 << 18])
@pytest.mark.parametrize("precision", ["float32", "bf16"])
def bench_gpu_encoder_chunk_size(benchmark, precision, chunk):
    """Points per chunk of the fused encoder (default 2^16 on CUDA): small chunks keep the
    [chunk, 512] intermediates in L2 (50 MB on an H100), large ones make fewer, larger GEMMs."""
    L = 40
    benchmark.group = f"gpu-encoder-chunk-L{L}-N2^22-{precision}"
    n = size(1 << 22, 4096)
    enc, w, b = _encoder(L)
    x = points(n, torch.float32, "cuda")
    with torch.no_grad():
        fn = lambda: F.location_encoder(x, L, w, b, w0_first=30.0, w0_hidden=1.0, tile_points=chunk,  # noqa: E731
                                        precision=precision)
        run(benchmark, fn, n_points=n, device="cuda", impl=f"fused-{precision}-chunk{chunk}", L=L, rounds=3)


@pytest.mark.parametrize("impl", ["compiled", "fallback"])
@pytest.mark.parametrize("L", [10, 40])
def bench_gpu_training_step(benchmark, L, impl):
    benchmark.group = f"gpu-train-step-L{L}-B65536-fp32"
    n = size(1 << 16, 1024)
    enc, w, b = _encoder(L)
    enc.train()
    x = points(n, torch.float32, "cuda")
    params = [p for p in enc.parameters()]

    def compiled_step():
        loss = enc(x).pow(2).mean()
        return torch.autograd.grad(loss, params)

    def fallback_step():
        # the same network through the pure-PyTorch reference, autograd throughout
        wf = enc.folded_first_weight()
        h = ref.spherical_harmonics(x, L)
        for i, layer in enumerate(enc.nnet.layers):
            mask = layer.dropout_mask(n)
            h, _ = ref.siren_layer(h, wf if i == 0 else layer.weight, layer.bias, layer.w0, mask, False)
        out = torch.addmm(enc.nnet.last_layer.bias, h, enc.nnet.last_layer.weight.t())
        return torch.autograd.grad(out.pow(2).mean(), params)

    run(benchmark, compiled_step if impl == "compiled" else fallback_step, n_points=n, device="cuda",
        impl=impl, L=L)

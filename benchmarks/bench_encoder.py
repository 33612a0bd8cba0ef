"""The whole location encoder (L = 10 and 40, hidden 512, 2 sine layers, output 256), forward:
the fused compiled op vs the pure-PyTorch fallback, and the three bare GEMMs of the same shapes
(the ceiling: the encoder should reach >= 85% of their throughput), twice: "bare-gemms" on the
same chunks of points as the encoder, on precomputed inputs (the ratio measures exactly what the
encoder adds: spherical harmonics, sines and bookkeeping), and "bare-gemms-whole" as three
whole-matrix GEMMs over all points (what a user would write with the features in memory; the
ratio also charges the encoder for its choice of chunk size). "original": the original
SatCLIP encoder re-created (benchmarks/original.py; float64, its own SH evaluation) on the same
points, the "x original" column of the report (the original runs in float64 in both groups)."""

import pytest
import torch

from conftest import points, run, size
from original import OriginalLocationEncoder
from satclip.ops import reference as ref
from satclip.ops import extension, switches
from satclip import functional as F
from satclip.nn import LocationEncoder

DTYPES = {"fp32": torch.float32, "fp64": torch.float64}


def _torchgeo(enc):
    """torchgeo's SatCLIP holding ``enc``'s weights, or a skip with the reason (torchgeo_peer.py)."""
    import torchgeo_peer
    try:
        return torchgeo_peer.same_weights(enc, torchgeo_peer.load())
    except torchgeo_peer.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("impl", ["fused", "fallback", "bare-gemms", "bare-gemms-whole", "original", "torchgeo"])
@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("L", [10, 40])
def bench_encoder_forward(benchmark, L, dt, impl):
    benchmark.group = f"encoder-fwd-L{L}-{dt}"
    dtype = DTYPES[dt]
    n = size(20_000)
    torch.manual_seed(0)
    enc = LocationEncoder(L, 512, 2, 256).to(dtype).eval()
    x = points(n, dtype)
    w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
    b = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
    chunk = F.default_tile_points(L, x.element_size())
    with torch.no_grad():
        if impl == "fused":
            fn = lambda: enc(x)  # noqa: E731
        elif impl == "original":
            orig = OriginalLocationEncoder(L).double().eval()
            x64 = x.double()
            fn = lambda: orig(x64)  # noqa: E731
        elif impl == "torchgeo":  # the peer, same weights, same precision
            peer = _torchgeo(enc)
            fn = lambda: peer(x)  # noqa: E731
        elif impl == "fallback":  # with the chunk size the fallback gets by default
            fb_chunk = F.default_tile_points(L, x.element_size(), compiled=False)
            fn = lambda: ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, fb_chunk)  # noqa: E731
        else:
            if impl == "bare-gemms-whole":
                chunk = n
            f0 = torch.randn(chunk, L * L, dtype=dtype)
            h = torch.randn(chunk, 512, dtype=dtype)
            out = torch.empty(n, 256, dtype=dtype)

            def fn():
                for lo in range(0, n, chunk):
                    hi = min(n, lo + chunk)
                    torch.addmm(b[0], f0[: hi - lo], w[0].t())
                    torch.addmm(b[1], h[: hi - lo], w[1].t())
                    torch.addmm(b[2], h[: hi - lo], w[2].t(), out=out[lo:hi])
        run(benchmark, fn, n_points=n, impl=impl, L=L, dtype=dt)


@pytest.mark.parametrize("impl", ["auto", "avx512bf16-kernels", "mkl-bf16-gemms", "rounded-operands",
                                  "torchgeo-autocast", "bare-gemms-whole"])
@pytest.mark.parametrize("L", [10, 40])
def bench_encoder_forward_bf16(benchmark, L, impl):
    """precision="bf16" on the CPU: auto (the default), each of its paths forced
    (SATCLIP_CPU_BF16_GEMM: this package's AVX512-BF16 kernels, MKL's bf16 GEMMs with a float32
    result, float32 GEMMs on bf16-rounded operands), torchgeo under autocast, and the ceiling: the three GEMMs as whole matrices with
    bf16 operands, through the faster of torch's bf16 matmul and float32 GEMMs on bf16 values."""
    benchmark.group = f"encoder-fwd-L{L}-bf16"
    if impl == "bare-gemms-whole":
        n = size(20_000)
        mats = {dt: (torch.randn(n, L * L, dtype=dt), torch.randn(n, 512, dtype=dt),
                     [torch.randn(512, L * L, dtype=dt), torch.randn(512, 512, dtype=dt), torch.randn(256, 512, dtype=dt)],
                     [torch.randn(512, dtype=dt), torch.randn(512, dtype=dt), torch.randn(256, dtype=dt)])
                for dt in (torch.bfloat16, torch.float32)}

        def chain(dt):
            f0, h, w, b = mats[dt]
            return lambda: (torch.addmm(b[0], f0, w[0].t()), torch.addmm(b[1], h, w[1].t()),
                            torch.addmm(b[2], h, w[2].t()))
        import time
        timing = {}
        for dt in mats:  # which of the two is the ceiling on this CPU
            fn = chain(dt)
            fn()
            t0 = time.perf_counter()
            fn()
            timing[dt] = time.perf_counter() - t0
        fastest = min(timing, key=timing.get)
        with torch.no_grad():
            run(benchmark, chain(fastest), n_points=n, impl=impl, L=L, dtype="bf16", gemm_dtype=str(fastest))
        return
    mode = {"avx512bf16-kernels": "avx512bf16", "mkl-bf16-gemms": "mkl", "rounded-operands": "rounded"}.get(impl, "auto")
    with switches.override(SATCLIP_CPU_BF16_GEMM=mode):
        if mode in ("mkl", "avx512bf16") and (extension.cpu_bf16_choices() or {}).get("path") != mode:
            pytest.skip({"mkl": "no MKL bf16 GEMM in this torch",
                         "avx512bf16": "this CPU lacks avx512_bf16 (or SATCLIP_CPU_ISA is below avx512)"}[mode])
        n = size(20_000)
        torch.manual_seed(0)
        enc = LocationEncoder(L, 512, 2, 256).eval()
        x = points(n, torch.float32)
        if impl == "torchgeo-autocast":  # torchgeo's bf16: torch.autocast over its float32 module
            peer = _torchgeo(enc)

            def fn():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return peer(x)
        else:
            enc.precision = "bf16"
            fn = lambda: enc(x)  # noqa: E731
        with torch.no_grad():
            run(benchmark, fn, n_points=n, impl=impl, L=L, dtype="bf16")


@pytest.mark.parametrize("impl", ["float32", "bf16", "float16"])
@pytest.mark.parametrize("L", [10, 40])
def bench_encoder_forward_precisions(benchmark, L, impl):
    """The public encoder in each precision mode on the same points (hidden 512, 256 out): the
    float16 mode runs float32 GEMMs on fp16-rounded operands on the CPU (no FP16 GEMM units here),
    bf16 its fastest CPU path (auto), float32 the exact GEMMs."""
    benchmark.group = f"encoder-fwd-L{L}-precision-modes"
    n = size(20_000)
    torch.manual_seed(0)
    enc = LocationEncoder(L, 512, 2, 256).eval()
    enc.precision = impl
    x = points(n, torch.float32)
    with torch.no_grad():
        run(benchmark, lambda: enc(x), n_points=n, impl=impl, L=L, dtype=impl)

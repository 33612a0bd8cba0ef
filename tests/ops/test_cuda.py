"""CUDA kernels vs the CPU kernels vs float64 references (skipped without a CUDA device).

Run on the GPU machine by benchmarks/gpu_check.sh; every case here is also meaningful the
day a device appears in CI."""

import math

import pytest
import torch

from conftest import lonlat_points
from satclip.ops import reference as ref
from satclip.ops.extension import has_kernel
from satclip.ops import extension, ops
from satclip.nn import LocationEncoder

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def _require_kernel(op="spherical_harmonics"):
    if not has_kernel(op, "cuda"):
        pytest.fail(f"a CUDA device is present but satclip::{op} has no CUDA kernel (built without CUDA?)")


@pytest.mark.parametrize("L", [1, 2, 10, 31, 32, 33, 40, 64, 65, 100, 129, 257])
def test_sh_forward_float64_matches_cpu(L):
    _require_kernel()
    x = lonlat_points(301)  # N not a multiple of the warps per block
    got = ops.spherical_harmonics(x.cuda(), L).cpu()
    want = ref.spherical_harmonics(x, L)
    assert (got - want).abs().max().item() < 1e-10


@pytest.mark.parametrize("L,tol", [(10, 1e-5), (40, 1e-4), (100, 1e-3), (200, 1e-2)])
def test_sh_forward_float32_accuracy(L, tol):
    _require_kernel()
    x = lonlat_points(200)
    got = ops.spherical_harmonics(x.float().cuda(), L).double().cpu()
    assert torch.isfinite(got).all()
    assert (got - ref.spherical_harmonics(x, L)).abs().max().item() < tol


def test_sh_forward_float64_l1024():
    _require_kernel()
    x = lonlat_points(8)
    got = ops.spherical_harmonics(x.cuda(), 1024).cpu()
    want = ops.spherical_harmonics(x, 1024)  # CPU kernel, checked against mpmath at L = 1000
    assert torch.isfinite(got).all()
    assert ((got - want).abs() / want.abs().clamp(min=1)).max().item() < 1e-10


def test_sh_edge_cases():
    _require_kernel()
    assert ops.spherical_harmonics(torch.zeros(0, 2, device="cuda"), 5).shape == (0, 25)
    x = lonlat_points(50).cuda()
    strided = torch.stack([x[:, 0], torch.zeros_like(x[:, 0]), x[:, 1]], 1)[:, ::2]
    assert not strided.is_contiguous()
    assert torch.equal(ops.spherical_harmonics(strided, 12), ops.spherical_harmonics(x, 12))
    with pytest.raises(RuntimeError, match="legendre_polys <= 1024"):
        ops.spherical_harmonics(x, 1025)


@pytest.mark.parametrize("L", [1, 5, 32, 33, 40, 100])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-3)])
def test_sh_backward_matches_cpu(L, dtype, tol):
    _require_kernel("spherical_harmonics_backward")
    x = lonlat_points(257)
    g = torch.randn(x.shape[0], L * L, dtype=torch.float64)
    want = ref.spherical_harmonics_backward(g, x, L)
    got = ops.spherical_harmonics_backward(g.to(dtype).cuda(), x.to(dtype).cuda(), L).double().cpu()
    assert torch.isfinite(got).all()
    assert ((got - want).abs().max() / (want.abs().max() + 1)).item() < tol


def test_gradcheck_on_cuda():
    _require_kernel()
    x = lonlat_points(5)[:5].cuda().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ops.spherical_harmonics(t, 6), (x,), eps=1e-6, atol=1e-6)
    xs = torch.randn(6, 5, dtype=torch.float64, device="cuda", requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, device="cuda", requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, ww, bb: ops.siren_layer(a, ww, bb, 3.0, None, True)[0], (xs, w, b))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_siren_layer_matches_cpu(dtype, tol):
    _require_kernel("siren_layer")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(333, 64, generator=g, dtype=dtype)
    w = torch.randn(48, 64, generator=g, dtype=dtype) / 8
    b = torch.randn(48, generator=g, dtype=dtype)
    mask = (torch.rand(333, 48, generator=g) > 0.5).to(dtype) * 2
    y_c, c_c = ops.siren_layer(x, w, b, 30.0, mask, True)
    y_g, c_g = ops.siren_layer(x.cuda(), w.cuda(), b.cuda(), 30.0, mask.cuda(), True)
    assert (y_g.cpu() - y_c).abs().max().item() < tol * 30
    assert (c_g.cpu() - c_c).abs().max().item() < tol * 30
    gy = torch.randn_like(y_c)
    for a, e in zip(ops.siren_layer_backward(gy.cuda(), c_c.cuda(), x.cuda(), w.cuda(), 30.0, mask.cuda()),
                    ops.siren_layer_backward(gy, c_c, x, w, 30.0, mask)):
        assert ((a.cpu() - e).abs().max() / (e.abs().max() + 1)).item() < tol


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-11), (torch.float32, 5e-4)])
@pytest.mark.parametrize("L", [10, 40, 64, 65])  # 65: first layer through SH + cuBLAS, not on chip
def test_fused_encoder_matches_cpu(L, dtype, tol):
    _require_kernel("location_encoder_forward")
    torch.manual_seed(0)
    enc = LocationEncoder(L, 128, 2, 32).to(dtype).eval()
    x = lonlat_points(1000, dtype=dtype)
    with torch.no_grad():
        want = enc(x)
        got = enc.cuda()(x.cuda()).cpu()
    assert (got - want).abs().max().item() < tol


@pytest.mark.parametrize("precision", ["float32", "tf32", "bf16"])
def test_fused_encoder_precision_modes(precision):
    """Each mode against the float64 encoder (the 1e-2 bound of the offered modes), and the
    default float32 mode stays exact even when the user allowed TF32 globally."""
    _require_kernel("location_encoder_forward")
    torch.manual_seed(0)
    enc = LocationEncoder(40, 512, 2, 256).eval()
    x = lonlat_points(2000)
    with torch.no_grad():
        exact = enc.double()(x)
        enc = enc.float().cuda()
        enc.precision = precision
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            got = enc(x.float().cuda()).double().cpu()
            # the encoder's GEMMs state their own math (own cuBLAS handle): the user's setting is
            # neither read nor changed
            assert torch.backends.cuda.matmul.allow_tf32 is True
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
    rel = ((got - exact).norm(dim=1) / exact.norm(dim=1)).max().item()
    assert rel < {"float32": 1e-4, "tf32": 5e-3, "bf16": 1e-2}[precision]


@pytest.mark.parametrize("precision,tol", [("float32", 1e-5), ("tf32", 3e-4), ("bf16", 2e-3)])
@pytest.mark.parametrize("L", [10, 40])
def test_precision_modes_match_the_cpu_op(L, precision, tol):
    """CUDA and CPU implement each mode as the same rounded-operand arithmetic, so they differ by
    the float32 summation order only -- plus, in the reduced modes, an operand that lands on the
    other side of a rounding boundary now and then (one ulp of one of 512 hidden values)."""
    _require_kernel("location_encoder_forward")
    torch.manual_seed(0)
    enc = LocationEncoder(L, 512, 2, 256).eval()
    enc.precision = precision
    x = lonlat_points(3000, dtype=torch.float32)
    with torch.no_grad():
        want = enc(x).double()
        got = enc.cuda()(x.cuda()).double().cpu()
    assert ((got - want).norm(dim=1) / want.norm(dim=1)).max().item() < tol


def test_training_step_on_cuda():
    _require_kernel()
    torch.manual_seed(0)
    enc = LocationEncoder(10, 64, 2, 16).cuda().train()
    x = lonlat_points(512, dtype=torch.float32).cuda().requires_grad_(True)
    enc(x).pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("gathered", [False, True])
@pytest.mark.parametrize("log_scale", [2.66, 4.1])  # fixed-shift blocks, then running-max tiles (float32)
def test_streaming_clip_loss_cuda_matches_cpu(gathered, log_scale):
    _require_kernel("clip_loss_streaming")
    g = torch.Generator().manual_seed(0)
    all_img = torch.nn.functional.normalize(torch.randn(3000, 64, generator=g), dim=1)
    all_loc = torch.nn.functional.normalize(all_img + torch.randn(3000, 64, generator=g), dim=1)
    off, b = (1000, 1200) if gathered else (0, 3000)
    scale = torch.tensor(math.exp(log_scale))

    def run(device):
        leaves = [t.to(device).clone().requires_grad_(True)
                  for t in (all_img[off:off + b], all_loc[off:off + b], all_img, all_loc, scale)]
        img, loc, ai, al, s = leaves
        args = (img, loc, ai, al) if gathered else (img, loc, None, None)
        loss = ops.clip_loss_streaming(*args, s, off, 512)[0]
        used = [t for t in args if t is not None] + [s]
        return [loss.detach().cpu()] + [t.cpu() for t in torch.autograd.grad(loss, used)]

    for a, b_ in zip(run("cuda"), run("cpu")):
        torch.testing.assert_close(a, b_, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("L", [1, 16, 17, 24, 32, 33, 40, 41, 64])  # both ends of every order bucket
@pytest.mark.parametrize("dtype,precision,tol", [(torch.float64, "float32", 1e-10), (torch.float32, "float32", 1e-4),
                                                 (torch.float32, "bf16", 3e-2)])
def test_first_layer_every_order_bucket(L, dtype, precision, tol):
    """The fused first layer against the CPU op in every order bucket, the float64 J = 8 bucket
    (L = 17-32) and the bf16 J = 16 bucket (L = 17-32) included; H = 200: a partial output tile."""
    _require_kernel("sh_siren_layer")
    g = torch.Generator().manual_seed(L)
    x = lonlat_points(300, dtype=dtype)
    w = ((torch.rand(200, L * L, generator=g, dtype=torch.float64) * 2 - 1) / (L * L)).to(dtype)
    b = ((torch.rand(200, generator=g, dtype=torch.float64) * 2 - 1) / (L * L)).to(dtype)
    want = ops.sh_siren_layer(x, L, w, b, 30.0, precision).double()
    got = ops.sh_siren_layer(x.cuda(), L, w.cuda(), b.cuda(), 30.0, precision).double().cpu()
    assert ((got - want).abs().max() / want.abs().max()).item() < tol


def test_first_call_inside_cuda_graph_capture():
    """The SH tables of a degree no other test uses are uploaded during capture (outside the
    captured stream and the graph's memory pool); the replayed graph gives the eager result."""
    _require_kernel()
    L = 23
    x = lonlat_points(500, dtype=torch.float32).cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(side), torch.cuda.graph(graph):
        y = ops.spherical_harmonics(x, L)
    graph.replay()
    torch.cuda.synchronize()
    assert (y.cpu() - ops.spherical_harmonics(x.cpu(), L)).abs().max().item() < 1e-4


def test_fused_choice_is_bucketed_and_bounded():
    """Batch sizes within one power-of-two bucket share one timed decision."""
    _require_kernel("location_encoder_forward")
    ops._cuda_fused("auto")
    enc = LocationEncoder(12, 128, 2, 32).cuda().eval()
    with torch.no_grad():
        enc(lonlat_points(5000, dtype=torch.float32).cuda())
        before = extension.cuda_fused_choices()["decisions"]
        for n in (5001, 6000, 7000, 8192):
            enc(lonlat_points(n, dtype=torch.float32).cuda())
        after = extension.cuda_fused_choices()["decisions"]
    assert after == before and any("[<=8192, 144]" in d["key"] for d in after), after


def test_bf16_hidden_layer_refuses_what_its_16_byte_loads_cannot_read():
    """A hidden width that is not a multiple of 8 takes cuBLAS even when the fused kernels are
    forced, and matches the CPU op."""
    _require_kernel("location_encoder_forward")
    torch.manual_seed(0)
    enc = LocationEncoder(10, 260, 2, 32).eval()
    enc.precision = "bf16"
    x = lonlat_points(1000, dtype=torch.float32)
    with torch.no_grad():
        want = enc(x).double()
        ops._cuda_fused("fused")
        try:
            got = enc.cuda()(x.cuda()).double().cpu()
        finally:
            ops._cuda_fused("auto")
    assert ((got - want).norm(dim=1) / want.norm(dim=1)).max().item() < 2e-3

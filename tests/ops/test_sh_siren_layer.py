"""satclip::sh_siren_layer, the first sine layer straight from the coordinates: every kernel
(CPU; CUDA where a device exists) against the float64 reference, tile edges, strided input,
N = 0 (errors on bad arguments: test_op_arguments.py). The CUDA kernel's phases are also simulated on the CPU in
test_sh_siren_sim.py."""

import json

import pytest
import torch

from conftest import lonlat_points, require_compiled
from satclip.ops import reference as ref
from satclip.ops import extension, ops

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def layer(L, H, dtype=torch.float64, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    d = max(L * L, 1)
    w = (torch.rand(H, L * L, generator=g, dtype=torch.float64) * 2 - 1) / d
    b = (torch.rand(H, generator=g, dtype=torch.float64) * 2 - 1) / d
    return w.to(device, dtype), b.to(device, dtype)


# L = 65 and 100 take the unfused path on CUDA (the kernel keeps L <= 64 on chip).
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("L,n,H", [(1, 5, 3), (10, 130, 100), (33, 77, 129), (40, 200, 512), (64, 66, 70),
                                   (65, 30, 20), (100, 20, 9)])
def test_float64_matches_reference(device, L, n, H):
    require_compiled("sh_siren_layer", device)
    x = lonlat_points(n)  # poles and the dateline included
    w, b = layer(L, H)
    got = ops.sh_siren_layer(x.to(device), L, w.to(device), b.to(device), 30.0).cpu()
    assert (got - ref.sh_siren_layer(x, L, w, b, 30.0)).abs().max().item() < 1e-11


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("L", [10, 40])
def test_float32_close_to_float64(device, L):
    x = lonlat_points(500)
    w, b = layer(L, 256)
    got = ops.sh_siren_layer(x.float().to(device), L, w.float().to(device), b.float().to(device), 30.0)
    assert (got.double().cpu() - ref.sh_siren_layer(x, L, w, b, 30.0)).abs().max().item() < 2e-4


@pytest.mark.parametrize("device", DEVICES)
def test_empty_and_strided(device):
    w, b = layer(8, 16, device=device)
    assert ops.sh_siren_layer(torch.zeros(0, 2, dtype=torch.float64, device=device), 8, w, b, 30.0).shape == (0, 16)
    x = lonlat_points(90).to(device)
    wide = torch.stack([x[:, 0], torch.zeros_like(x[:, 0]), x[:, 1]], 1)[:, ::2]
    assert not wide.is_contiguous()
    torch.testing.assert_close(ops.sh_siren_layer(wide, 8, w, b, 30.0), ops.sh_siren_layer(x, 8, w, b, 30.0),
                               rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_many_tiles_matches_cpu():
    """A grid of 1,563 x 8 blocks (N = 100,003 points, not a multiple of the 64-point tile)."""
    x = torch.rand(100_003, 2, dtype=torch.float64) * torch.tensor([360.0, 180.0]) - torch.tensor([180.0, 90.0])
    w, b = layer(40, 512)
    got = ops.sh_siren_layer(x.cuda(), 40, w.cuda(), b.cuda(), 30.0).cpu()
    assert (got - ops.sh_siren_layer(x, 40, w, b, 30.0)).abs().max().item() < 1e-11


def test_no_backward():
    x = lonlat_points(4)
    w, b = layer(3, 4)
    w.requires_grad_(True)
    with pytest.raises(RuntimeError, match="inference op and has no backward"):
        ops.sh_siren_layer(x, 3, w, b, 30.0).sum().backward()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("L,n,H", [(1, 5, 3), (10, 130, 100), (40, 257, 512), (64, 66, 70), (65, 20, 9)])
def test_bf16_mode(device, L, n, H):
    """bf16 operands, float32 sums and sine, a bf16 result. The kernels' float32 features and
    sums differ from the reference's in their last bits (on CUDA L <= 64 runs the tensor-core
    kernel), so a bf16 rounding may land one step away now and then, never more."""
    require_compiled("sh_siren_layer", device)
    x = lonlat_points(n).float()
    w, b = layer(L, H, torch.float32)
    got = ops.sh_siren_layer(x.to(device), L, w.to(device), b.to(device), 30.0, "bf16").cpu()
    want = ref.sh_siren_layer(x, L, w, b, 30.0, "bf16")
    assert got.dtype == torch.bfloat16 and got.shape == (x.shape[0], H)
    err = (got.float() - want.float()).abs()
    assert err.max().item() <= 2 ** -7 and (err > 0).float().mean().item() < 0.05
    exact = ref.sh_siren_layer(x.double(), L, w.double(), b.double(), 30.0)
    assert (got.double() - exact).abs().max().item() < 0.1  # bf16 features times w0 = 30


@pytest.mark.skipif(extension.private_op("_cuda_fused") is None, reason="CUDA library not loaded")
def test_fused_mode_setting():
    """The switch between the fused kernels and cuBLAS in the CUDA encoder (it needs no device
    to be set or refused)."""
    before = extension.cuda_fused_mode()
    try:
        assert json.loads(ops._cuda_fused("cublas"))["mode"] == "cublas"
        assert extension.cuda_fused_mode() == "cublas"
        with pytest.raises(RuntimeError, match="must be 'auto', 'fused' or 'cublas', got 'fast'"):
            ops._cuda_fused("fast")
    finally:
        ops._cuda_fused(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("mode", ["fused", "cublas", "auto"])
@pytest.mark.parametrize("precision,dtype,tol", [("float32", torch.float64, 1e-11), ("float32", torch.float32, 1e-4),
                                                 ("bf16", torch.float32, 2e-3)])
def test_cuda_encoder_fused_modes_match_cpu(mode, precision, dtype, tol):
    """The encoder with its fused kernels forced, cuBLAS forced, or the faster timed, against the
    CPU op in the same mode (max per-point relative error). bf16 has a fused hidden layer too."""
    from satclip.nn import LocationEncoder

    torch.manual_seed(0)
    enc = LocationEncoder(40, 256, 2, 64).to(dtype).eval()
    enc.precision = precision
    x = lonlat_points(700, dtype=dtype)
    before = extension.cuda_fused_mode()
    try:
        ops._cuda_fused(mode)
        with torch.no_grad():
            want = enc(x).double()
            got = enc.cuda()(x.cuda()).double().cpu()
        report = extension.cuda_fused_choices()["decisions"]
    finally:
        ops._cuda_fused(before)
    assert ((got - want).norm(dim=1) / want.norm(dim=1)).max().item() < tol
    if mode == "auto":  # the choices were timed and are reported
        first = [d for d in report if d["key"].startswith(f"first layer, {precision}, ") and ", 1600] -> 256" in d["key"]]
        assert first and set(first[0]["ms"]) == {"fused", "cublas"}, report
        if precision == "bf16":
            assert "hidden layer, bf16, BFloat16 input [713, 256] -> 256" in report

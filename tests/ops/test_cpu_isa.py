"""The CPU kernels of every instruction set this CPU can run (baseline x86-64, AVX2+FMA, AVX-512),
forced one after the other in one process, against the float64 reference and each other: SH
forward and backward, the SIREN epilogues, the fused encoder and the int8 quantisation. Sets the CPU lacks are skipped
with the reason (and forcing one is refused)."""

import pytest
import torch

from conftest import EPS32, float32_tolerance, lonlat_points, require_compiled
from satclip.ops import ops, switches
from satclip.ops import reference as ref
from satclip.ops.extension import ISA_NAMES

LEVELS = {"base": 0, "avx2": 1, "avx512": 2}


def _best() -> int:
    require_compiled("spherical_harmonics")
    with switches.override(SATCLIP_CPU_ISA="auto"):
        return int(torch.ops.satclip._cpu_isa(""))


@pytest.fixture(params=list(LEVELS))
def isa(request):
    if LEVELS[request.param] > _best():
        pytest.skip(f"this CPU runs at most {ISA_NAMES[_best()]}, not {request.param}")
    with switches.override(SATCLIP_CPU_ISA=request.param):
        assert int(torch.ops.satclip._cpu_isa("")) == LEVELS[request.param]
        yield request.param


@pytest.mark.parametrize("L", [10, 40])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sh_forward_and_backward(isa, L, dtype):
    x = lonlat_points(500).to(dtype)
    want = ref.spherical_harmonics(x.double(), L)
    got = ops.spherical_harmonics(x, L)
    tol = 2e-12 * L if dtype == torch.float64 else 4e-5 * (L / 10) ** 1.5  # the recurrence's own error (README)
    assert (got.double() - want).abs().max() < tol
    g = torch.randn_like(want)
    gwant = ref.spherical_harmonics_backward(g, x.double(), L)
    ggot = ops.spherical_harmonics_backward(g.to(dtype), x, L)
    scale = gwant.abs().max()
    assert ((ggot.double() - gwant).abs().max() / scale) < (1e-10 if dtype == torch.float64 else 2e-3)


def test_siren_epilogue_and_encoder(isa):
    torch.manual_seed(0)
    x = torch.randn(300, 64)
    w, b = torch.randn(128, 64) / 8, torch.randn(128)
    y, cos = ops.siren_layer(x, w, b, 30.0, None, True)
    z = 30.0 * (x.double() @ w.double().t() + b.double())
    mag = 30.0 * (x.double().abs() @ w.double().abs().t() + b.double().abs())  # what the argument sums
    tol = float32_tolerance(mag, rel=EPS32) + 3 * EPS32
    assert bool(((y.double() - torch.sin(z)).abs() <= tol).all())
    assert bool(((cos.double() - torch.cos(z)).abs() <= tol).all())
    L = 12
    pts = lonlat_points(700).float()
    ws = [torch.randn(64, L * L) / L, torch.randn(64, 64) / 8, torch.randn(16, 64) / 8]
    bs = [torch.randn(64), torch.randn(64), torch.randn(16)]
    got = ops.location_encoder_forward(pts, L, ws, bs, 30.0, 1.0, 256, "float32")
    want = ref.location_encoder_forward(pts.double(), L, [t.double() for t in ws], [t.double() for t in bs], 30.0,
                                        1.0, 256, "float32")
    assert (got.double() - want).abs().max() < 1e-3


def test_forcing_a_set_the_cpu_lacks_is_refused():
    best = _best()
    if best == 2:
        pytest.skip("this CPU runs every set the kernels are built for")
    lacking = [name for name, level in LEVELS.items() if level > best][0]
    with pytest.raises(RuntimeError, match=f"SATCLIP_CPU_ISA={lacking}: this CPU lacks it"):
        torch.ops.satclip._cpu_isa(lacking)


def test_quantize_int8(isa):
    from satclip.embedding.convert import quantize_int8 as numpy_reference
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(300, 257, generator=g) * torch.logspace(-5, 5, 300)[:, None]
    emb[3] = 0
    emb[4, 7] = float("nan")
    codes, scale = ops.quantize_int8(emb, 2)
    want_codes, want_scale = numpy_reference(emb.numpy())
    assert (codes.numpy() == want_codes).all() and ((scale.numpy() == want_scale) | (scale.isnan().numpy())).all()

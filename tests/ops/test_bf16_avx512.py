"""precision="bf16" on this package's AVX512-BF16 kernels (csrc/cpu/encoder_bf16_avx512.h,
SATCLIP_CPU_BF16_GEMM=avx512bf16) against the float32 GEMMs on bf16-rounded operands (the mode's
numbers, up to float32 summation order) and the pure-PyTorch twin; run where the CPU has
avx512_bf16, skipped with the reason elsewhere."""

import pytest
import torch

from conftest import lonlat_points, require_compiled
from satclip.ops import extension, ops, switches
from satclip.ops import reference as ref


def _native_or_skip():
    require_compiled("location_encoder_forward")
    report = extension.cpu_bf16_choices()
    if report["path"] != "avx512bf16":
        pytest.skip("this CPU lacks avx512_bf16 (or the AVX-512 kernels are switched off): " + report["why"])


def _layers(L, widths, seed):
    """Weights [out, in] and biases of a SIREN with these layer widths (the last one linear)."""
    g = torch.Generator().manual_seed(seed)
    ins = [L * L] + widths[:-1]
    # SIREN's initialisation: U(-1, 1) sqrt(6 / in) / w0, w0 = 30 for the first layer
    w = [(torch.rand(o, i, generator=g) * 2 - 1) * (6 / i) ** 0.5 / (30 if k == 0 else 1)
         for k, (o, i) in enumerate(zip(widths, ins))]
    b = [torch.rand(o, generator=g) * 0.2 - 0.1 for o in widths]
    return w, b


def _both(x, L, w, b, tile=1024):
    with torch.no_grad():
        with switches.override(SATCLIP_CPU_BF16_GEMM="avx512bf16"):
            _native_or_skip()
            got = ops.location_encoder_forward(x, L, w, b, 30.0, 1.0, tile, "bf16")
        with switches.override(SATCLIP_CPU_BF16_GEMM="rounded"):
            rounded = ops.location_encoder_forward(x, L, w, b, 30.0, 1.0, tile, "bf16")
        exact = ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, tile, "float32")
        twin = ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, tile, "bf16")
    return got, rounded, twin, exact


# Odd L (an odd feature count: the k-pair padding), widths that are not multiples of the 64-column
# block or even (260, 37), point counts that leave partial row tiles and partial blocks of 48.
@pytest.mark.parametrize("L,widths,n", [(10, [512, 512, 256], 3000), (40, [512, 512, 256], 1001),
                                        (9, [260, 37, 5], 677), (3, [64, 64], 47), (1, [16, 3], 5)])
def test_gives_the_modes_numbers(L, widths, n):
    x = lonlat_points(n).float()
    w, b = _layers(L, widths, seed=L)
    got, rounded, twin, exact = _both(x, L, w, b)
    assert got.shape == exact.shape and torch.isfinite(got).all()
    # An operand now and then crosses a bf16 rounding boundary (float32 sums in another order), so
    # compare on average: the kernels sit with the mode's numbers, far from the exact result.
    mode_error = (twin - exact).abs().mean()
    assert (got - rounded).abs().mean() < 0.1 * mode_error
    assert (got - twin).abs().mean() < 0.5 * mode_error


@pytest.mark.parametrize("L,h", [(10, 256), (9, 37), (40, 65)])
def test_one_gemm_matches_the_float64_gemm_of_the_same_rounded_operands(L, h):
    # SH -> linear: one GEMM. Its operands (the compiled SH rounded to bf16, the rounded weights)
    # multiplied in float64 are the reference; the kernels' float32 sums may differ from it by the
    # summation bound K * eps * sum |terms|, the float32 GEMM of the rounded path as well.
    x = lonlat_points(999).float()
    w, b = _layers(L, [h], seed=3)
    got, rounded, _, _ = _both(x, L, w, b)
    a = ref.round_operand(ops.spherical_harmonics(x, L), "bf16").double()
    wr = ref.round_operand(w[0], "bf16").double()
    want = a @ wr.t() + b[0].double()
    bound = (L * L + 1) * 2.0 ** -24 * (a.abs() @ wr.abs().t() + b[0].double().abs())
    assert ((got.double() - want).abs() <= bound).all()
    assert ((rounded.double() - want).abs() <= bound).all()


def test_strided_points_empty_input_and_sines_beyond_the_fast_range():
    L, n = 10, 500
    w, b = _layers(L, [128, 128, 64], seed=5)
    # a first-layer bias of 200: w0 * z reaches 6,000, beyond fast_sincos's 4,096 (std::sin there)
    b_far = [b[0] + 200.0] + b[1:]
    pts = lonlat_points(n).float()
    n = len(pts)  # lonlat_points adds the poles and the dateline
    strided = pts.t().contiguous().t()
    assert strided.stride() == (1, n)
    for bias in (b, b_far):
        got, rounded, twin, exact = _both(strided, L, w, bias)
        assert (got - rounded).abs().mean() < 0.1 * (twin - exact).abs().mean()
    empty, _, _, _ = _both(pts[:0], L, w, b)
    assert empty.shape == (0, 64)


def test_a_lower_isa_switches_the_kernels_off_and_says_why():
    require_compiled("location_encoder_forward")
    with switches.override(SATCLIP_CPU_BF16_GEMM="avx512bf16"):
        if "CPU lacks avx512_bf16" in extension.cpu_bf16_choices()["why"]:
            pytest.skip("this CPU lacks avx512_bf16")
        with switches.override(SATCLIP_CPU_ISA="avx2"):
            info = extension.cpu_bf16_choices()
            x = lonlat_points(300).float()
            w, b = _layers(10, [64, 32], seed=1)
            with torch.no_grad():
                forced = ops.location_encoder_forward(x, 10, w, b, 30.0, 1.0, 1024, "bf16")
            with switches.override(SATCLIP_CPU_BF16_GEMM="rounded"), torch.no_grad():
                rounded = ops.location_encoder_forward(x, 10, w, b, 30.0, 1.0, 1024, "bf16")
    assert info["path"] == "rounded" and info["why"].startswith("SATCLIP_CPU_BF16_GEMM=avx512bf16 but unavailable")
    assert "AVX512-BF16 kernels: no (SATCLIP_CPU_ISA below avx512)" in info["why"]
    assert torch.equal(forced, rounded)


def test_a_choice_timed_with_the_kernels_is_not_reused_below_avx512():
    require_compiled("location_encoder_forward")
    x = lonlat_points(600).float()
    w, b = _layers(7, [96, 40], seed=11)  # a shape no other test times
    shape = "L=7 96x49 40x96"
    with switches.override(SATCLIP_CPU_BF16_GEMM="auto"), torch.no_grad():
        report = extension.cpu_bf16_choices()
        if report["path"] != "measured" or "AVX512-BF16 kernels: yes" not in report["why"]:
            pytest.skip("auto times this package's AVX512-BF16 kernels only where the CPU has avx512_bf16")
        ops.location_encoder_forward(x, 7, w, b, 30.0, 1.0, 1024, "bf16")
        with switches.override(SATCLIP_CPU_ISA="avx2"):
            below = ops.location_encoder_forward(x, 7, w, b, 30.0, 1.0, 1024, "bf16")
            info = extension.cpu_bf16_choices()
    report = info["decisions"]
    lines = [d for d in report if d["key"].startswith(shape)]
    if info["path"] == "measured":  # MKL's bf16 GEMM against the rounded operands, timed anew
        assert len(lines) == 2, report  # one choice per candidate set
        below_line = next(d for d in lines if "avx512bf16" not in d["ms"])
        path = below_line["chosen"]
        assert path in ("mkl", "rounded")
    else:  # no MKL bf16 GEMM in this torch: the rounded operands, untimed
        assert len(lines) == 1 and info["path"] == "rounded", report
        path = "rounded"
    with switches.override(SATCLIP_CPU_BF16_GEMM=path), torch.no_grad():
        assert torch.equal(below, ops.location_encoder_forward(x, 7, w, b, 30.0, 1.0, 1024, "bf16"))


def test_opcheck_on_the_kernels():
    x = lonlat_points(300).float()
    w, b = _layers(6, [70, 33, 9], seed=2)
    with switches.override(SATCLIP_CPU_BF16_GEMM="avx512bf16"):
        _native_or_skip()
        torch.library.opcheck(ops.location_encoder_forward.default, (x, 6, w, b, 30.0, 1.0, 64, "bf16"))

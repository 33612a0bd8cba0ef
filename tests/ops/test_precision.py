"""Precision modes of the fused encoder (tf32, bf16, float16 GEMM operands; float32 accumulation): the
operand rounding, the compiled op against the reference in each mode, and the embedding error
of each offered mode against float64 (must stay below 1e-2 relative, or the mode goes)."""

import numpy as np
import pytest
import torch

from conftest import lonlat_points, require_compiled
import satclip
from satclip.ops import reference as ref
from satclip import functional as F
from satclip.ops import extension, ops, switches


def test_bf16_rounding_is_torch_bfloat16():
    x = torch.randn(10000) * 10
    assert torch.equal(ref.round_operand(x, "bf16"), x.bfloat16().float())


def test_tf32_rounding_to_nearest_11_significant_bits():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(100000, generator=g) * torch.exp(torch.randn(100000, generator=g) * 5)).float()
    r = ref.round_operand(x, "tf32")
    assert torch.all(r.view(torch.int32) & 0x1FFF == 0)  # low 13 mantissa bits cleared
    rel = ((r.double() - x.double()).abs() / x.double().abs()).max()
    assert rel <= 2.0 ** -11 * 1.0001  # half an ulp of a 10-bit mantissa
    # nearest: no other value on the tf32 grid is closer
    up = (r.view(torch.int32) + 0x2000).view(torch.float32).double()
    dn = (r.view(torch.int32) - 0x2000).view(torch.float32).double()
    d = (r.double() - x.double()).abs()
    assert torch.all(d <= (up - x.double()).abs()) and torch.all(d <= (dn - x.double()).abs())
    assert torch.equal(ref.round_operand(x, "float32"), x)


def test_float16_rounding_is_torch_half():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(100000, generator=g) * torch.exp(torch.randn(100000, generator=g) * 6)).float()
    edges = torch.tensor([0.0, -0.0, 65504.0, 65519.996, 65520.0, -7e4, 6.1e-5, 2.0 ** -24, 2.0 ** -25,
                          3 * 2.0 ** -26, 1e-9, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, float("inf")])
    for v in (x, edges):
        assert torch.equal(ref.round_operand(v, "float16"), v.half().float())
    assert torch.isnan(ref.round_operand(torch.tensor([float("nan")]), "float16")).all()


def test_float16_operands_round_as_torch_half_in_the_compiled_op():
    """L = 1 (one constant feature, Y_00) and one linear layer: each output is one product of two
    rounded operands plus zero, so the op's own rounding (csrc/common/fp16_round.h) must give
    torch's half conversion bit for bit: ties, half's subnormals, its largest value and beyond."""
    require_compiled("location_encoder_forward")
    g = torch.Generator().manual_seed(1)
    w = torch.cat([torch.tensor([65504.0, 65519.996, 65520.0, 7e4, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 1e-9,
                                 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, -1.0 - 2.0 ** -11, 0.0]),
                   torch.randn(500, generator=g) * torch.exp(torch.randn(500, generator=g) * 6)]).float()[:, None]
    x = lonlat_points(7).float()
    with torch.no_grad():
        got = ops.location_encoder_forward(x, 1, [w], [torch.zeros(len(w))], 30.0, 1.0, 4, "float16")
    y00 = ops.spherical_harmonics(x, 1)[:, :1]
    want = y00.half().float() * w[:, 0].half().float()
    assert torch.equal(got, want)


def _encoder(L, seed=0):
    torch.manual_seed(seed)
    return satclip.LocationEncoder(L, 512, 2, 256).eval()


@pytest.mark.parametrize("precision", F.PRECISIONS)
@pytest.mark.parametrize("L", [10, 40])
def test_compiled_op_matches_reference_in_each_mode(L, precision):
    require_compiled("location_encoder_forward")
    enc = _encoder(L)
    x = lonlat_points(3000).float()
    w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
    b = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
    with torch.no_grad():
        got = ops.location_encoder_forward(x, L, w, b, 30.0, 1.0, 1024, precision)
        want = ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, 1024, precision)
        exact = ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, 1024, "float32")
    if precision == "float32":
        assert (got - want).abs().max() < 2e-4  # only the float32 summation order differs
    else:
        # The SH of kernel and reference differ in the last float32 bit, which now and then moves
        # an operand across a rounding boundary of the mode, so compare on average: the op must
        # sit with the reference of its own mode, far from the exact float32 result.
        assert (got - want).abs().mean() < 0.5 * (got - exact).abs().mean()


@pytest.mark.parametrize("L", [10, 40])
def test_bf16_mode_through_mkl_bf16_gemms_gives_the_modes_numbers(L):
    # SATCLIP_CPU_BF16_GEMM=mkl: MKL's bf16 GEMM with float32 result (what runs by default on
    # CPUs with AVX512-BF16 / AMX) against the float32 GEMMs on rounded operands and the twin.
    require_compiled("location_encoder_forward")
    enc = _encoder(L)
    x = lonlat_points(3000).float()
    w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
    b = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
    with torch.no_grad():
        with switches.override(SATCLIP_CPU_BF16_GEMM="mkl"):
            if extension.cpu_bf16_choices()["path"] != "mkl":
                pytest.skip("this torch carries no MKL bf16 GEMM")
            got = ops.location_encoder_forward(x, L, w, b, 30.0, 1.0, 1024, "bf16")
            no_hidden = [ops.location_encoder_forward(x, L, [w[0][:3]], [b[0][:3]], 30.0, 1.0, 700, "bf16")]
        want = ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, 1024, "bf16")
        exact = ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, 1024, "float32")
        with switches.override(SATCLIP_CPU_BF16_GEMM="rounded"):
            rounded = ops.location_encoder_forward(x, L, w, b, 30.0, 1.0, 1024, "bf16")
            no_hidden.append(ops.location_encoder_forward(x, L, [w[0][:3]], [b[0][:3]], 30.0, 1.0, 700, "bf16"))
    assert (got - want).abs().mean() < 0.5 * (got - exact).abs().mean()
    assert (got - rounded).abs().mean() < 0.5 * (got - exact).abs().mean()
    assert (no_hidden[0] - no_hidden[1]).abs().max() < 1e-5  # SH -> linear: one GEMM, same operands


def test_auto_bf16_keeps_the_faster_path_per_shape_with_either_paths_numbers():
    require_compiled("location_encoder_forward")
    with switches.override(SATCLIP_CPU_BF16_GEMM="auto"):
        if extension.cpu_bf16_choices()["path"] != "measured":
            pytest.skip("auto measures only where the CPU has bf16 instructions and torch has MKL's bf16 GEMM")
        enc = _encoder(10, seed=7)
        x = lonlat_points(5000).float()
        w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
        b = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
        with torch.no_grad():
            got = ops.location_encoder_forward(x, 10, w, b, 30.0, 1.0, 1024, "bf16")
        report = extension.cpu_bf16_choices()["decisions"]
        chosen = [d for d in report if d["key"].startswith("L=10 512x100 512x512 256x512")]
        assert len(chosen) == 1 and chosen[0]["unit"].endswith(" points"), report
        assert set(chosen[0]["ms"]) >= {chosen[0]["chosen"], "rounded"} and all(v > 0 for v in chosen[0]["ms"].values())
    path = chosen[0]["chosen"]
    with switches.override(SATCLIP_CPU_BF16_GEMM=path), torch.no_grad():
        assert torch.equal(got, ops.location_encoder_forward(x, 10, w, b, 30.0, 1.0, 1024, "bf16"))


# The measured max per-point relative errors against float64 (docs/guides/precision.md) (random-init, hidden 512,
# seed 1, 4,000 points from lonlat_points(4000) incl. poles and dateline).
DOCUMENTED_MAX_ERROR = {10: {"float32": 3.1e-6, "tf32": 7.9e-4, "bf16": 5.9e-3, "float16": 7.9e-4},
                        40: {"float32": 1.6e-5, "tf32": 6.1e-4, "bf16": 4.9e-3, "float16": 6.3e-4}}


@pytest.mark.parametrize("L", [10, 40])
def test_embedding_error_of_each_offered_mode_below_1e_2(L):
    enc = _encoder(L, seed=1)
    x = lonlat_points(4000)
    with torch.no_grad():
        exact = enc.double()(x).numpy()
        enc.float()
        errors, outputs = {}, {}
        for precision in F.PRECISIONS:
            enc.precision = precision
            outputs[precision] = got = enc(x.float())
            if precision == "tf32":
                # On the CPU the encoder runs tf32 as float32 (no TF32 units); the mode's own values,
                # what a GPU computes, come from the op, which rounds the operands as the mode says.
                assert torch.equal(got, outputs["float32"])
                w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
                b = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
                got = ops.location_encoder_forward(x.float(), L, w, b, 30.0, 1.0, 1024, "tf32")
            got = got.double().numpy()
            rel = np.linalg.norm(got - exact, axis=1) / np.linalg.norm(exact, axis=1)  # per point
            errors[precision] = float(rel.max())
    assert errors["float32"] < errors["tf32"] < errors["bf16"] < 1e-2, errors
    # float16 has tf32's 10 mantissa bits (3 more than bf16): its error sits near tf32's, several
    # times below bf16's
    assert errors["float16"] < errors["bf16"] / 4, errors
    # Each mode held to about twice its documented figure (max per-point relative error, these seeds),
    # so a mode that got several times worse cannot pass unnoticed.
    for mode, bound in DOCUMENTED_MAX_ERROR[L].items():
        assert errors[mode] < 2 * bound, (mode, errors[mode], bound)


def test_refusals():
    enc = _encoder(10)
    x = lonlat_points(10)
    with pytest.raises(ValueError, match="precision must be one of"):
        satclip.LocationEncoder(10, precision="fp8")
    enc.double().precision = "bf16"
    with torch.no_grad(), pytest.raises(ValueError, match="applies to float32 encoders"):
        enc(x)
    w = [torch.zeros(4, 4), torch.zeros(2, 4)]
    b = [torch.zeros(4), torch.zeros(2)]
    with pytest.raises(RuntimeError, match="precision must be"):
        ops.location_encoder_forward(x.float(), 2, w, b, 30.0, 1.0, 16, "int8")
    with pytest.raises(RuntimeError, match="needs float32"):
        ops.location_encoder_forward(x, 2, [t.double() for t in w], [t.double() for t in b], 30.0, 1.0, 16, "tf32")

"""satclip::quantize_int8 (the int8 output's per-point quantisation): the compiled kernels (every
CPU instruction set: tests/ops/test_cpu_isa.py; CUDA where there is a GPU) and the pure-PyTorch twin give
the numpy reference's codes and scales bit for bit: random rows over ten decades, exact ties
(rounded half to even), all-zero rows, rows with a NaN, strided input, empty input; the error
bound ``|e - code * scale| <= scale / 2``; argument errors; opcheck."""

import numpy as np
import pytest
import torch

from satclip.embedding.convert import quantize_int8 as numpy_reference
from satclip.ops import ops
from satclip.ops import reference as ref

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _rows(n=300, d=257, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, d, generator=g) * torch.logspace(-5, 5, n)[:, None]
    emb[3] = 0                                              # all zero: scale 1, codes 0
    emb[4, :4] = torch.tensor([0.5, -1.5, 2.5, 127.0])      # scale 1: exact ties, rounded to even
    emb[4, 4:] = 0
    emb[5, 7] = float("nan")                                # a NaN: scale NaN, codes 0
    emb[6] = -emb[6].abs()                                  # the maximum on the negative side
    return emb


def _same(got, want) -> None:
    codes, scale = got
    assert codes.dtype == torch.int8 and scale.dtype == torch.float32
    assert np.array_equal(codes.cpu().numpy(), want[0])
    assert np.array_equal(scale.cpu().numpy(), want[1], equal_nan=True)


@pytest.mark.parametrize("impl", ["dispatched", "reference"])
@pytest.mark.parametrize("threads", [0, 1, 2])
def test_equals_the_numpy_reference(impl, threads):
    emb = _rows()
    fn = ops.quantize_int8 if impl == "dispatched" else ref.quantize_int8
    want = numpy_reference(emb.numpy())
    _same(fn(emb, threads), want)
    assert want[0][4, :4].tolist() == [0, -2, 2, 127] and want[0][5].tolist() == [0] * emb.shape[1]
    assert np.isnan(want[1][5]) and want[1][3] == 1.0


def test_error_bound_strided_and_empty():
    emb = _rows(n=64, d=130, seed=2)
    emb[5] = 1.0  # no NaN here
    codes, scale = ops.quantize_int8(emb)
    back = codes.float() * scale[:, None]
    assert torch.all((back - emb).abs() <= scale[:, None] / 2 * (1 + 1e-6))
    assert codes.abs().max() == 127 and codes.min() > -128
    strided = torch.randn(130, 64).t()  # [64, 130] with unit row stride: a transposed view
    _same(ops.quantize_int8(strided), numpy_reference(strided.numpy()))
    _same(ops.quantize_int8(emb[::3]), numpy_reference(emb[::3].numpy()))  # every third row
    codes, scale = ops.quantize_int8(torch.zeros(0, 8))
    assert codes.shape == (0, 8) and scale.shape == (0,)


@pytest.mark.parametrize("impl", ["dispatched", "reference"])
@pytest.mark.parametrize("args,match", [
    ((torch.zeros(3),), r"embeddings of shape \[N, D\]"),
    ((torch.zeros(3, 4, dtype=torch.float64),), "float32 embeddings"),
    ((torch.zeros(3, 4), -1), "threads must be >= 0"),
])
def test_argument_errors(impl, args, match):
    fn = ops.quantize_int8 if impl == "dispatched" else ref.quantize_int8
    with pytest.raises(RuntimeError, match=f"satclip::quantize_int8: .*{match}"):
        fn(*args)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    emb = _rows(n=20, d=33)
    emb[5] = 1.0  # opcheck compares outputs without equal_nan
    emb = emb.to(device)
    torch.library.opcheck(ops.quantize_int8.default, (emb, 0))
    torch.library.opcheck(ops.quantize_int8.default, (emb[:, 1:], 1))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_the_cpu_bytes():
    emb = _rows(n=1000, d=256, seed=3)
    _same(ops.quantize_int8(emb.cuda()), numpy_reference(emb.numpy()))

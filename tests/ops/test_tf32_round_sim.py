"""The TF32 rounding the CUDA kernels apply where they store an operand of the tf32 mode (the SH
kernel, the sine pass: csrc/cuda/tf32_round.h), compiled for the CPU and compared bit for bit
with the reference's rounding (satclip.ops.reference.round_operand, which the CPU op and the
tests use): random values over many binades, exact ties (both parities), values that round up
into the next binade, zeros, subnormals, the largest floats, inf and NaN."""

import ctypes

import pytest
import torch

from conftest import build_sim
from satclip.ops import reference as ref


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    dll = build_sim("tf32_round_sim", tmp_path_factory.mktemp("sim"))
    dll.round_tf32_sim.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return dll


def _bits(*values):
    return torch.tensor(values, dtype=torch.int64).to(torch.int32).view(torch.float32)


def test_matches_the_reference_bit_for_bit(sim):
    g = torch.Generator().manual_seed(0)
    random = torch.randn(200_000, generator=g) * torch.exp2(torch.randint(-60, 60, (200_000,), generator=g).float())
    ties = _bits(0x3F801000, 0x3F803000, 0xBF801000, 0x3F802FFF, 0x3F803001)  # halfway: even, odd; around
    edges = _bits(0x3FFFF000, 0x7F7FFFFF, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0, 0x80000000)
    x = torch.cat([random, ties, edges]).contiguous()
    y = torch.empty_like(x)
    sim.round_tf32_sim(x.data_ptr(), y.data_ptr(), x.numel())
    want = ref.round_operand(x, "tf32")
    assert torch.equal(y.view(torch.int32), want.view(torch.int32))
    assert (y.view(torch.int32) & 0x1FFF).eq(0).all()  # 10 mantissa bits left

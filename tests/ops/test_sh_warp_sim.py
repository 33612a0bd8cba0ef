"""The warp-per-point SH kernels (csrc/cuda/spherical_harmonics.cu), simulated on the CPU:
tests/ops/sim/sh_warp_sim.cpp runs their lane steps (csrc/cuda/sh_warp.h) for the 32 lanes of a
point, with the warp shuffles read from the other lanes as __shfl_down/up/sync define them.
Forward and backward against the float64 reference, for every compiled chunk count (orders
m = lane + 32 j, j < J, J = 1, 2, 4, 8, 32) and the chunk edges where Q_{l,m+-1} comes from the
next or previous chunk; poles and the dateline included. test_cuda.py runs the kernels."""

import ctypes

import pytest
import torch

from conftest import build_sim, lonlat_points
from satclip.ops import reference as ref

DEGREES = [1, 2, 31, 32, 33, 64, 65, 100, 129, 257]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    dll = build_sim("sh_warp_sim", tmp_path_factory.mktemp("warp"))
    dll.sh_fwd_sim_f64.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p]
    dll.sh_bwd_sim_f64.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p]
    return dll


@pytest.mark.parametrize("L", DEGREES)
def test_forward_matches_reference(sim, L):
    x = lonlat_points(20 if L <= 129 else 3).contiguous()
    out = torch.full((x.shape[0], L * L), float("nan"), dtype=torch.float64)
    assert sim.sh_fwd_sim_f64(x.data_ptr(), x.shape[0], L, out.data_ptr()) == 0
    assert torch.isfinite(out).all()  # every feature written
    assert (out - ref.spherical_harmonics(x, L)).abs().max().item() < 1e-11


@pytest.mark.parametrize("L", DEGREES)
def test_backward_matches_reference(sim, L):
    x = lonlat_points(20 if L <= 129 else 3).contiguous()
    g = torch.randn(x.shape[0], L * L, generator=torch.Generator().manual_seed(L), dtype=torch.float64)
    out = torch.full((x.shape[0], 2), float("nan"), dtype=torch.float64)
    assert sim.sh_bwd_sim_f64(g.data_ptr(), x.data_ptr(), x.shape[0], L, out.data_ptr()) == 0
    want = ref.spherical_harmonics_backward(g, x, L)
    assert ((out - want).abs() / want.abs().clamp(min=1)).max().item() < 1e-10

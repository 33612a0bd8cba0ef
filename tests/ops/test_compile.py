"""torch.compile(fullgraph=True) over the ops: no graph breaks, same numbers as eager."""

import os
import shutil

import pytest
import torch

from conftest import lonlat_points
from satclip import functional as F
from satclip.nn import LocationEncoder


@pytest.mark.parametrize("train", [False, True])
def test_compile_encoder_fullgraph(train):
    torch.manual_seed(0)
    enc = LocationEncoder(legendre_polys=6, dim_hidden=32, dim_out=8, dropout=False).double()
    enc.train(train)
    x = lonlat_points(50)
    compiled = torch.compile(enc, fullgraph=True, backend="aot_eager")
    if train:
        eager = enc(x)
        out = compiled(x)
        out.sum().backward()
        assert all(p.grad is not None for p in enc.parameters())
    else:
        with torch.no_grad():
            eager, out = enc(x), compiled(x)
    assert torch.allclose(out, eager, atol=1e-12)


# inductor compiles C++ for the CPU; the wheel's own check (packaging/check_wheel.sh) runs with no
# compiler on PATH, where this test cannot run and the op's opaque use is covered above
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None and shutil.which("c++") is None,
                    reason="no C++ compiler for inductor's CPU code")
def test_compile_spherical_harmonics_with_inductor():
    x = lonlat_points(40)
    fn = torch.compile(lambda t: F.spherical_harmonics(t, 8, validate=False) * 2.0, fullgraph=True)
    assert torch.allclose(fn(x), 2.0 * F.spherical_harmonics(x, 8), atol=1e-12)

"""Forward throughput of every location encoder of the original code (eval mode, no gradient),
at the original's default sizes (hidden 256, 2 hidden layers, output 256; frequency encodings
with 16 frequencies; spherical harmonics at L = 10): each positional encoding with a SIREN, and
each network on spherical harmonics. The released pair (spherical harmonics + SIREN) runs the
fused kernels; every other one is plain torch (ComposedLocationEncoder). One group per encoder,
so the report lists them side by side."""

import pytest
import torch

from conftest import points, run, size
from satclip.nn import ComposedLocationEncoder, LocationEncoder
from satclip.nn.composed_encoder import LE_TYPES
from satclip.nn.networks import NETWORKS

HP = dict(legendre_polys=10, frequency_num=16, min_radius=1.0, max_radius=260.0, capacity=256,
          num_hidden_layers=2, embed_dim=256)
CASES = ([(le, "siren", "analytic") for le in LE_TYPES] + [("sphericalharmonics", "siren", "discretized")]
         + [("sphericalharmonics", pe, "analytic") for pe in NETWORKS if pe != "siren"])


def _name(le, pe, harmonics):
    return f"{le}{'-discretized' if harmonics == 'discretized' else ''}+{pe}"


@pytest.mark.parametrize("le,pe,harmonics", CASES, ids=[_name(*c) for c in CASES])
def bench_encoder_kinds_forward(benchmark, le, pe, harmonics):
    benchmark.group = f"encoder-kinds-fwd-{_name(le, pe, harmonics)}"
    n = size(100_000)
    torch.manual_seed(0)
    if (le, pe, harmonics) == ("sphericalharmonics", "siren", "analytic"):
        enc = LocationEncoder(HP["legendre_polys"], HP["capacity"], HP["num_hidden_layers"], HP["embed_dim"])
    else:
        enc = ComposedLocationEncoder(le, pe, harmonics_calculation=harmonics, **HP)
    enc = enc.float().eval()
    x = points(n, torch.float32)
    with torch.no_grad():
        enc(x[:8])  # builds the discretized table outside the timing
        run(benchmark, lambda: enc(x), n_points=n, impl=_name(le, pe, harmonics), dtype="fp32")

"""Global grids: the encoder (hidden 512, 2 sine layers, output 256, float32) on one chunk of a
0.25-degree grid (45 rows x 1,440 columns = 64,800 points, what `satclip embed --grid 0.25` hands
the encoder at a time), with the first layer factorised over latitude rows (satclip.nn.iso_latitude)
and unfactorised (the plain fused op), at L = 10, 40 and 100. The report gives the factorised
path's ratio to the unfactorised one ("vs fallback (or ... unfactorised)" column)."""

import pytest
import torch

from conftest import run, size
from satclip.nn import LocationEncoder


def grid_chunk(step: float, rows: int, dtype=torch.float32) -> torch.Tensor:
    lon = torch.arange(-180 + step / 2, 180, step, dtype=torch.float64)
    lat = -90 + step / 2 + step * torch.arange(300, 300 + rows, dtype=torch.float64)
    ll = torch.stack(torch.meshgrid(lat, lon, indexing="ij"), -1).reshape(-1, 2)
    return ll[:, [1, 0]].to(dtype).contiguous()


@pytest.mark.parametrize("impl", ["factorised", "unfactorised"])
@pytest.mark.parametrize("L", [10, 40, 100])
def bench_grid_encoder(benchmark, L, impl):
    benchmark.group = f"grid-0.25deg-L{L}-fp32"
    x = grid_chunk(0.25, size(45, 3))
    torch.manual_seed(0)
    enc = LocationEncoder(L, 512, 2, 256).eval()
    enc.factorise = "always" if impl == "factorised" else "never"
    with torch.no_grad():
        run(benchmark, lambda: enc(x), n_points=len(x), impl=impl, L=L, dtype="fp32")

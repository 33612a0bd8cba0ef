"""The streaming embedder end to end (source -> encoder -> sink, reader and writer threads)
against the encoder alone on the same points, in one run: from a grid and from a Parquet table,
to Parquet and to Zarr. Target: >= 70% of the encoder's own throughput on CPU."""

import numpy as np
import pytest
import torch

from conftest import SMOKE, run, size
import satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

L = 10


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(L, 512, 2, 256).float().eval()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    n = size(200_000, 2000)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("tbl") / "points.parquet"
    pq.write_table(pa.table({"lon": rng.uniform(-180, 180, n), "lat": rng.uniform(-90, 90, n)}), path)
    return path, n


@pytest.mark.parametrize("impl", ["encoder-alone", "grid->parquet", "grid->zarr", "table->parquet"])
def bench_embed_end_to_end(benchmark, tmp_path, encoder, table, impl):
    benchmark.group = f"embed-L{L}-fp32"
    if impl.endswith("zarr"):
        pytest.importorskip("zarr")
    chunk = 16384
    # 1,036,800 grid points (648 in smoke mode): 64 chunks, so the pipeline's fill and drain (one
    # chunk read before the first encode, one written after the last) weigh little, as in real runs
    step = 10.0 if SMOKE else 0.25
    grid = S.GridSource(step, chunk_points=chunk)
    counter = iter(range(10**6))
    if impl == "encoder-alone":
        pts = np.concatenate([np.stack([c.lon, c.lat], 1) for c in grid.chunks()])
        x = torch.from_numpy(pts).float()

        def fn():
            with torch.no_grad():
                for s in range(0, len(x), chunk):
                    encoder(x[s:s + chunk]).numpy()
        n = len(grid)
    elif impl.startswith("grid"):
        fmt = impl.split(">")[1]
        fn = lambda: run_embedding(encoder, grid, tmp_path / f"o{next(counter)}", fmt=fmt, progress=False)  # noqa: E731
        n = len(grid)
    else:
        path, n = table
        src = S.TableSource(path, chunk_points=chunk)
        fn = lambda: run_embedding(encoder, src, tmp_path / f"o{next(counter)}", progress=False)  # noqa: E731
    run(benchmark, fn, n_points=n, impl=impl, rounds=3)

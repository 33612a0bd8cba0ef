"""Our outputs in torchgeo 0.10's own datasets, run by torchgeo itself in a Python >= 3.12
environment (torchgeo needs 3.12; `make test-torchgeo` builds one and sets
SATCLIP_TORCHGEO_PYTHON; without it these tests are skipped, saying so): a Parquet output loads
with `EarthIndexEmbeddings` (a row's embedding and point as satclip wrote them) and a COG grid
with a `RasterDataset` (the 10-degree cell around a point returns that cell's embedding).
`MajorTOMEmbeddings` needs columns a location embedding has no value for (`timestamp`,
`centre_lon`, `centre_lat`), so it is not claimed."""

import json
import os
import subprocess

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.reader import read_embeddings
from satclip.embedding.runner import run_embedding

PYTHON = os.environ.get("SATCLIP_TORCHGEO_PYTHON")
pytestmark = pytest.mark.skipif(not PYTHON, reason="SATCLIP_TORCHGEO_PYTHON is not set (`make test-torchgeo` builds "
                                                   "a Python 3.12 venv with torchgeo 0.10.1 and sets it)")

READ = r"""
import json, sys
from torchgeo.datasets import EarthIndexEmbeddings, RasterDataset
parquet, cog = sys.argv[1], sys.argv[2]
ds = EarthIndexEmbeddings(root=parquet)
s = ds[5]
class SatCLIPGrid(RasterDataset):
    filename_glob = "embeddings.tif"
grid = SatCLIPGrid(paths=cog)
img = grid[10.0:20.0, -30.0:-20.0]["image"]
print(json.dumps({"n": len(ds), "x": float(s["x"]), "y": float(s["y"]), "embedding": s["embedding"].tolist(),
                  "cell": img[:, 0, 0].tolist(), "shape": list(img.shape)}))
"""


def test_torchgeo_reads_parquet_and_cog(tmp_path):
    pytest.importorskip("rasterio")
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 8).float().eval()
    pq_out = run_embedding(enc, S.GridSource(10.0), tmp_path / "pq", progress=False)
    cog_out = run_embedding(enc, S.GridSource(10.0), tmp_path / "cog", fmt="cog", progress=False)
    proc = subprocess.run([PYTHON, "-c", READ, str(pq_out), str(cog_out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    ids, lon, lat, emb = read_embeddings(pq_out)
    assert got["n"] == len(ids) == 648
    k = int(np.flatnonzero(ids == ids[5])[0])
    assert (got["x"], got["y"]) == (lon[k], lat[k]) and np.allclose(got["embedding"], emb[k], rtol=0, atol=0)
    cell = np.flatnonzero((lon == 15.0) & (lat == -25.0))[0]
    assert got["shape"] == [8, 1, 1] and np.allclose(got["cell"], emb[cell], rtol=0, atol=0)

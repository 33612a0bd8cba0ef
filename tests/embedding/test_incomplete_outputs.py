"""A killed run's output never reads as complete: satclip's reader refuses it (or, asked to, warns),
and in a Zarr output published as it is written (``publish_partial``) the cells no chunk wrote
read as NaN (float) or as the int8 code -128 with a NaN scale, never as an embedding, for zarr
and xarray alike."""

import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import satclip
from conftest import fault_env
from satclip.embedding.reader import IncompleteOutput, read_embeddings

zarr = pytest.importorskip("zarr")

_CHILD = r"""
import sys, torch, satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding
enc = satclip.load(sys.argv[1], dtype=torch.float32)
run_embedding(enc, S.GridSource(10.0, chunk_points=72), sys.argv[2], fmt=sys.argv[3], out_dtype=sys.argv[4],
              progress=False, publish_partial=sys.argv[5] == "1")
"""


def _killed_run(tmp_path, fmt, dtype, publish_partial=False):
    torch.manual_seed(0)
    ckpt = satclip.save(satclip.LocationEncoder(4, 16, 2, 8).float().eval(), tmp_path / "enc.safetensors")
    out = tmp_path / f"{fmt}-{dtype}"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ckpt), str(out), fmt, dtype, str(int(publish_partial))],
                          env=fault_env(crash_at="shard:5"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return out


@pytest.mark.parametrize("fmt", ["parquet", "zarr"])
def test_the_reader_refuses_an_incomplete_output_unless_asked(tmp_path, fmt):
    out = _killed_run(tmp_path, fmt, "float32")
    with pytest.raises(IncompleteOutput, match=r"incomplete: \d of 9 chunks written .* rerun the same"):
        read_embeddings(out)
    with pytest.warns(UserWarning, match="incomplete"):
        ids, lon, lat, emb = read_embeddings(out, allow_incomplete=True)
    if fmt == "parquet":
        assert 0 < len(ids) < 648 and np.isfinite(emb).all()  # the shards written so far
    else:
        written = np.isfinite(emb).all(axis=1)
        assert 0 < written.sum() < 648 and np.isnan(emb[~written]).all()  # the rest: NaN, never an embedding


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_unwritten_zarr_cells_are_never_embeddings(tmp_path, dtype):
    out = _killed_run(tmp_path, "zarr", dtype, publish_partial=True)
    root = zarr.open_group(str(out), mode="r")
    emb = root["embedding"][:]
    if dtype == "int8":
        unwritten = (emb == -128).all(axis=-1)
        assert np.isnan(root["embedding_scale"][:][unwritten]).all()
    else:
        unwritten = np.isnan(emb).all(axis=-1)
    assert 0 < unwritten.sum() < unwritten.size
    xr = pytest.importorskip("xarray")
    ds = xr.open_zarr(out)
    if dtype != "int8":
        assert int(np.isnan(ds.embedding.values).all(axis=-1).sum()) == int(unwritten.sum())
    with pytest.warns(UserWarning, match="unwritten chunks read as NaN"):
        _, _, _, values = read_embeddings(out, allow_incomplete=True)
    assert np.isnan(values[unwritten.reshape(-1)]).all()

"""A finished (or partly finished) output is resumed only by a run with the same model, input and
every setting that changes the bytes on disk; each manifest key is tried on its own."""

import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding

pytest.importorskip("pyarrow")


def _encoder(seed=0, dim=8):
    torch.manual_seed(seed)
    return satclip.LocationEncoder(4, 16, 2, dim).float().eval()


BASE = dict(fmt="parquet", out_dtype="float32")
CHANGES = {
    "format": lambda: (_encoder(), S.GridSource(30.0), dict(BASE, fmt="npy")),
    "dtype": lambda: (_encoder(), S.GridSource(30.0), dict(BASE, out_dtype="float16")),
    "chunk_points": lambda: (_encoder(), S.GridSource(30.0, chunk_points=50), BASE),
    "precision": lambda: (_precision(_encoder(), "bf16"), S.GridSource(30.0), BASE),
    "model": lambda: (_encoder(seed=1), S.GridSource(30.0), BASE),
    "dim": lambda: (_encoder(dim=4), S.GridSource(30.0), BASE),
    "source": lambda: (_encoder(), S.GridSource(15.0), BASE),
}


def _precision(enc, p):
    enc.precision = p
    return enc


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_each_setting_is_compared(tmp_path, key):
    out = tmp_path / "o"
    run_embedding(_encoder(), S.GridSource(30.0), out, progress=False, **BASE)
    enc, src, kw = CHANGES[key]()
    with pytest.raises(ValueError, match=rf"different .*\b{key}\b"):
        run_embedding(enc, src, out, progress=False, **kw)
    run_embedding(_encoder(), S.GridSource(30.0), out, progress=False, **BASE)  # the same run resumes (no-op)


def test_a_run_that_wrote_no_chunk_does_not_block_the_next(tmp_path):
    """A run refused at its first chunk (here: a table with an out-of-range latitude) leaves no
    state that makes the corrected command look like a different run."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    bad = tmp_path / "pts.parquet"
    pq.write_table(pa.table({"lon": [10.0, 20.0], "lat": [95.0, 5.0]}), bad)
    out = tmp_path / "o"
    with pytest.raises(ValueError, match="latitude outside"):
        run_embedding(_encoder(), S.TableSource(bad), out, progress=False)
    pq.write_table(pa.table({"lon": [10.0, 20.0], "lat": [45.0, 5.0]}), bad)  # corrected in place
    run_embedding(_encoder(), S.TableSource(bad), out, progress=False)

"""Names users had before 0.2 keep working for one release and say what replaces them, once:
``satclip embed --batch-size`` (now ``--chunk-points``), ``satclip.embed(batch_size=)`` and the
sources' ``chunk_size=`` (now ``chunk_points=``), ``functional.location_encoder(chunk_size=)``
(now ``tile_points=``)."""

import warnings

import numpy as np
import pytest
import torch

import satclip
from satclip import functional as F
from satclip.cli import main
from satclip.embedding import sources as S
from satclip.options import _WARNED


@pytest.fixture(autouse=True)
def _fresh_warnings():
    _WARNED.clear()
    yield
    _WARNED.clear()


def test_batch_size_flag_still_works_and_says_so(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    assert main(["embed", "--grid", "30", "--batch-size", "24", "--out", str(tmp_path / "old")]) == 0
    err = capsys.readouterr().err
    assert "--batch-size is deprecated" in err and "use --chunk-points" in err
    assert main(["embed", "--grid", "30", "--chunk-points", "24", "--out", str(tmp_path / "new")]) == 0
    assert "deprecated" not in capsys.readouterr().err
    import pyarrow.parquet as pq
    old, new = pq.read_table(tmp_path / "old"), pq.read_table(tmp_path / "new")
    assert old.equals(new) and len(list((tmp_path / "old").glob("part-*.parquet"))) == 3  # 72 cells / 24
    with pytest.raises(SystemExit, match="give --chunk-points only"):
        main(["embed", "--grid", "30", "--batch-size", "24", "--chunk-points", "24", "--out", str(tmp_path / "x")])


def test_python_keywords_warn_once_and_work():
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 8).eval()
    pts = np.array([[10.0, 20.0], [-30.0, 40.0], [170.0, -80.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = satclip.embed(enc, pts, batch_size=2)
        b = satclip.embed(enc, pts, batch_size=2)
        grid = S.GridSource(30.0, chunk_size=24)
        S.GridSource(30.0, chunk_size=24)
    msgs = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert len(msgs) == 2, msgs  # once per name
    assert "satclip.embed: batch_size= is deprecated" in msgs[0] and "chunk_points=" in msgs[0]
    assert "GridSource: chunk_size= is deprecated" in msgs[1]
    assert np.array_equal(a, b) and np.array_equal(a, satclip.embed(enc, pts, chunk_points=2))
    assert grid.chunk_points == 24 and grid.num_chunks == 3

    w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
    bias = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
    x = torch.tensor(pts, dtype=torch.float32)
    with torch.no_grad(), pytest.warns(FutureWarning, match="chunk_size= is deprecated.*tile_points="):
        old = F.location_encoder(x, 4, w, bias, chunk_size=2)
    with torch.no_grad():
        assert torch.equal(old, F.location_encoder(x, 4, w, bias, tile_points=2))


def test_chunk_points_checked_where_given():
    with pytest.raises(ValueError, match="chunk_points must be a positive int, got 0"):
        S.GridSource(30.0, chunk_points=0)
    with pytest.raises(ValueError, match="chunk_points must be a positive int"):
        satclip.embed(satclip.LocationEncoder(4, 16, 2, 8).eval(), np.zeros((1, 2)), chunk_points=0)

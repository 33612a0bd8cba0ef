"""The command line: `satclip info` and `satclip demo`."""

import json

import numpy as np

from satclip.cli import main


def test_info_text_and_json(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "spherical_harmonics" in out and "cpu:" in out
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "ops" in data and "extension" in data


def test_demo_embeds_a_grid(tmp_path, capsys):
    out = tmp_path / "emb.npy"
    assert main(["demo", "--step", "30", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "72 points" in text and "backend (cpu)" in text
    emb = np.load(out)
    assert emb.shape == (72, 256) and np.isfinite(emb).all()

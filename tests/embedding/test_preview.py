"""The --preview map: a PNG built while streaming the output (peak memory as without preview),
principal-component colours, coastlines, and point sets drawn as visible dots."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.preview import PCAColours, render_preview
from satclip.embedding.runner import run_embedding

pytest.importorskip("matplotlib")
pytest.importorskip("pyarrow")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(6, 32, 2, 8).float().eval()


def test_colours_are_the_top_components_stretched():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8)) * np.array([5, 3, 2, 0.1, 0.1, 0.1, 0.1, 0.1])
    c = PCAColours(x)
    rgb = c(x)
    assert rgb.shape == (2000, 3) and rgb.min() >= 0 and rgb.max() <= 1
    # the first colour channel follows the largest-variance axis
    assert abs(np.corrcoef(rgb[:, 0], x[:, 0])[0, 1]) > 0.9


def test_grid_and_points_previews(tmp_path, encoder):
    pytest.importorskip("global_land_mask")
    out = run_embedding(encoder, S.GridSource(5.0, land_only=True), tmp_path / "land", progress=False)
    png = render_preview(out, tmp_path / "map.png")
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    pts = np.random.default_rng(1).uniform([-180, -60], [180, 80], size=(1000, 2))
    out2 = run_embedding(encoder, S.ArraySource(pts), tmp_path / "pts", progress=False)
    import matplotlib.image as mpimg
    img = mpimg.imread(render_preview(out2, tmp_path / "pts.png"))
    # 1,000 dots large enough to colour a visible share of the map, not 1-pixel specks
    colourful = (img[..., :3].std(axis=2) > 0.08).mean()
    assert colourful > 0.05, colourful


def _peak_rss_mb(args, cwd) -> float:
    """Peak RSS (MB) of `satclip embed ARGS` in a fresh child process, as the child reports it."""
    code = ("import sys, resource; from satclip.cli import main; rc = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "embed", *args], check=True, cwd=cwd, capture_output=True,
                          text=True)
    return int(proc.stdout.split()[-1]) / 1024


@pytest.mark.slow
def test_preview_keeps_memory_bounded(tmp_path):
    pytest.importorskip("global_land_mask")
    base = ["--grid", "0.5", "--dtype", "float16", "--quiet"]
    plain = _peak_rss_mb([*base, "--out", str(tmp_path / "a")], tmp_path)
    with_preview = _peak_rss_mb([*base, "--out", str(tmp_path / "b"), "--preview", str(tmp_path / "b.png")], tmp_path)
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG
    assert with_preview < 1.25 * plain, (plain, with_preview)

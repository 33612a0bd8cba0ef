"""satclip.locate and Gallery: top-k by cosine similarity equal to a brute-force ranking,
great-circle distances, galleries from grids, points and `satclip embed` outputs (refused when
another model wrote them), and the refusals."""

import numpy as np
import pytest
import torch
from torch import nn

import satclip
from satclip.imagery.locate import Gallery, great_circle_km, locate


class _Model(nn.Module):
    """The two towers locate needs: a linear image encoder and a small location encoder."""

    def __init__(self, dim=8, channels=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.visual = nn.Sequential(nn.Flatten(), nn.Linear(channels * 4 * 4, dim))
        self.location = satclip.LocationEncoder(3, 16, 1, dim).eval()

    def encode_image(self, images):
        return self.visual(images.float())


def test_great_circle_km():
    assert great_circle_km([0, 0], [0, 0]) == 0
    np.testing.assert_allclose(great_circle_km([0, 0], [180, 0]), np.pi * 6371.0088)
    np.testing.assert_allclose(great_circle_km([10, 90], [-170, 90]), 0, atol=1e-9)  # one pole, any longitude
    np.testing.assert_allclose(great_circle_km([179.5, 0], [-179.5, 0]), 6371.0088 * np.radians(1.0))  # dateline
    # Paris - London: 343.5 km on the mean sphere
    assert abs(float(great_circle_km([2.3522, 48.8566], [-0.1276, 51.5072])) - 343.5) < 1.0


def test_top_k_equals_brute_force():
    model = _Model()
    rng = np.random.default_rng(0)
    gallery = Gallery(rng.uniform([-180, -90], [180, 90], (500, 2)), rng.normal(size=(500, 8)))
    images = torch.rand(7, 3, 4, 4)
    res = locate(model, images, gallery, k=5, true_lonlat=np.zeros((7, 2)), batch_size=3)
    with torch.no_grad():
        emb = model.encode_image(images).numpy().astype(np.float64)
    cos = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ gallery.embeddings.T.astype(np.float64)
    want = np.argsort(-cos, axis=1)[:, :5]
    np.testing.assert_array_equal(res.index, want)
    np.testing.assert_allclose(res.similarity, np.take_along_axis(cos, want, 1), atol=1e-5)
    np.testing.assert_array_equal(res.lonlat, gallery.lonlat[want])
    np.testing.assert_allclose(res.distance_km, great_circle_km(np.zeros((7, 1, 2)), gallery.lonlat[want]))
    assert (np.diff(res.similarity, axis=1) <= 1e-7).all()  # best first


def test_galleries_from_grid_points_and_embed_output(tmp_path):
    model = _Model()
    grid = Gallery.from_grid(model, 10.0)
    assert len(grid) == 36 * 18 and grid.lonlat[0].tolist() == [-175.0, -85.0]
    np.testing.assert_allclose(np.linalg.norm(grid.embeddings, axis=1), 1, rtol=1e-5)
    pts = Gallery.from_points(model, grid.lonlat[:10])
    np.testing.assert_allclose(pts.embeddings, grid.embeddings[:10], rtol=1e-5, atol=1e-6)
    from satclip.embedding import run_embedding
    from satclip.embedding.sources import GridSource
    out = run_embedding(model.location, GridSource(10.0), tmp_path / "emb", progress=False)
    table = Gallery.from_output(out, model)
    np.testing.assert_allclose(table.lonlat, grid.lonlat)
    np.testing.assert_allclose(table.embeddings, grid.embeddings, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="another location encoder"):
        Gallery.from_output(out, _Model(seed=1))


def test_refusals():
    model = _Model()
    gallery = Gallery(np.zeros((3, 2)), np.eye(3, 8))
    with pytest.raises(ValueError, match="NaN, inf or all-zero"):
        Gallery(np.zeros((2, 2)), np.zeros((2, 8)))
    with pytest.raises(ValueError, match="as many points as embeddings"):
        Gallery(np.zeros((2, 2)), np.ones((3, 8)))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        locate(model, torch.rand(3, 4, 4), gallery)
    bad = torch.rand(2, 3, 4, 4)
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        locate(model, bad, gallery)
    with pytest.raises(ValueError, match="k must be"):
        locate(model, torch.rand(1, 3, 4, 4), gallery, k=0)
    with pytest.raises(ValueError, match="true_lonlat has 1 rows for 2 images"):
        locate(model, torch.rand(2, 3, 4, 4), gallery, true_lonlat=[[0, 0]])
    assert locate(model, torch.rand(2, 3, 4, 4), gallery, k=10).index.shape == (2, 3)  # k capped at the gallery

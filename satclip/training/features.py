"""Frozen-backbone mode: image features computed once, then only the location side trains.

With a frozen backbone (the original's MoCo setting) the image side of every step is the same
backbone pass followed by a small projection. :func:`cache_features` runs the backbone once over
a dataset (centre crop, no augmentation) and stores the pooled features; :class:`FeatureDataset`
then serves ``{"features": [B, F], "point": [B, 2]}`` batches (coordinate jitter still applied),
so a training step is the projection + the location encoder: GEMM speed instead of CNN speed.

Cache layout (a directory, written under a temporary name and renamed when complete, so a
killed run never leaves a cache that looks finished): ``features.npy`` float32 ``[N, F]``,
``lonlat.npy`` float64 ``[N, 2]``, ``meta.json`` (backbone, fingerprint of its weights, sizes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .transforms import JITTER_DEG, jitter

META = "meta.json"


def backbone_fingerprint(model) -> str:
    """sha256 of the backbone's tensors (the projection excluded): a cache is only reused with
    the very backbone that produced it."""
    head = model.visual.get_classifier()
    skip = {id(p) for p in head.parameters()}
    h = hashlib.sha256()
    for name, t in model.visual.state_dict(keep_vars=True).items():
        if id(t) in skip:
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def cache_features(model, dataset: Dataset, out_dir, *, batch_size: int = 64, num_workers: int = 0,
                   device=None, progress: bool = False) -> Path:
    """Writes the pooled backbone features of every sample of ``dataset`` to ``out_dir``.

    An existing complete cache made by the same backbone is reused as it is; one made by another
    backbone is refused (delete it or pick another directory).
    """
    out = Path(os.fspath(out_dir))
    fp = backbone_fingerprint(model)
    if out.exists():
        meta = read_meta(out)
        if meta["backbone"] != fp or meta["n"] != len(dataset):
            raise ValueError(f"{out} holds features of another backbone or dataset (backbone {meta['backbone']}, "
                             f"{meta['n']} samples; now {fp}, {len(dataset)}); delete it or choose another directory")
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    device = torch.device(device or "cpu")
    was_training = model.training
    model.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    feats, points = [], []
    it = loader
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(loader, desc="caching image features", unit="batch")
    for batch in it:
        feats.append(model.pooled_features(batch["image"].to(device)).float().cpu().numpy())
        points.append(batch["point"].double().numpy())
    model.train(was_training)
    f, p = np.concatenate(feats), np.concatenate(points)
    np.save(tmp / "features.npy", f)
    np.save(tmp / "lonlat.npy", p)
    (tmp / META).write_text(json.dumps({"backbone": fp, "n": int(f.shape[0]), "dim": int(f.shape[1])}))
    os.replace(tmp, out)
    return out


def read_meta(path) -> dict:
    path = Path(os.fspath(path))
    try:
        meta = json.loads((path / META).read_text())
        if not {"backbone", "n", "dim"} <= set(meta):
            raise ValueError("incomplete")
    except (OSError, ValueError):
        raise ValueError(f"{path} is not a complete feature cache (no valid {META}); delete it to rebuild") from None
    return meta


class FeatureDataset(Dataset):
    """Cached features and coordinates; index with an int or a list of ints (a whole batch at
    once, which is what the DataModule does: no per-sample Python at batch 8192)."""

    def __init__(self, path, jitter_deg: float = JITTER_DEG, indices=None):
        path = Path(os.fspath(path))
        self.meta = read_meta(path)
        self.features = np.load(path / "features.npy", mmap_mode="r")
        self.lonlat = np.load(path / "lonlat.npy", mmap_mode="r")
        if self.features.shape != (self.meta["n"], self.meta["dim"]) or self.lonlat.shape != (self.meta["n"], 2):
            raise ValueError(f"{path}: arrays {self.features.shape}, {self.lonlat.shape} do not match {META} {self.meta}")
        self.indices = np.arange(self.meta["n"]) if indices is None else np.asarray(indices)
        self.jitter_deg = jitter_deg

    def subset(self, indices) -> "FeatureDataset":
        out = object.__new__(FeatureDataset)
        out.__dict__.update(self.__dict__)
        out.indices = self.indices[np.asarray(indices)]
        return out

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        rows = np.sort(self.indices[np.asarray(i)].reshape(-1))  # sorted: sequential mmap reads
        point = torch.from_numpy(np.asarray(self.lonlat[rows]))
        if self.jitter_deg:
            point = jitter(point, self.jitter_deg)
        batch = {"features": torch.from_numpy(np.asarray(self.features[rows])), "point": point}
        if np.ndim(i) == 0:
            batch = {k: v[0] for k, v in batch.items()}
        return batch

"""Validation on several processes (2 gloo processes, file rendezvous, frozen-backbone cached
features, 25 validation rows: not a multiple of the batch): every process gets its part of each
global batch (the last one split 5 + 4), and the logged loss equals one process's on the combined
data with the global batch size."""

import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

pytest.importorskip("lightning")
pytest.importorskip("timm")

from satclip.training.lightning import SatCLIPDataModule, SatCLIPLightningModule, rank_batches  # noqa: E402
from satclip.training.loss import global_mean  # noqa: E402

N, VAL_FRACTION, BATCH = 50, 0.5, 8  # 25 validation rows


def _cache(root) -> str:
    """A feature cache (the layout of satclip.training.features) of N rows."""
    import json
    d = os.path.join(root, "cache")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(os.path.join(d, "features.npy"), rng.normal(size=(N, 512)).astype(np.float32))
    np.save(os.path.join(d, "lonlat.npy"), np.stack([rng.uniform(-180, 180, N), rng.uniform(-90, 90, N)], 1))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"backbone": "test", "n": N, "dim": 512}, f)
    return d


def _module():
    torch.manual_seed(0)
    return SatCLIPLightningModule(embed_dim=8, vision_layers="resnet18", legendre_polys=4, capacity=16,
                                  freeze_backbone=True, pretrained_required=False).eval()


@torch.no_grad()
def _validation_loss(cache: str, batch_size: int) -> tuple[float, list[int]]:
    """What validation_step logs, reduced over the epoch as Lightning does (mean weighted by the
    logged batch size), and this process's batch sizes."""
    dm = SatCLIPDataModule(cache, batch_size=batch_size, val_fraction=VAL_FRACTION, seed=0)
    dm.setup()
    module = _module()
    total, rows, sizes = 0.0, 0, []
    for batch in dm.val_dataloader():
        sizes.append(batch["point"].shape[0])
        loss, n = global_mean(module._loss(batch), sizes[-1])
        total += float(loss) * n
        rows += n
    return total / rows, sizes


def _worker(rank, world, root):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(root, 'rendezvous')}", rank=rank,
                            world_size=world)
    loss, sizes = _validation_loss(os.path.join(root, "cache"), BATCH)
    torch.save({"loss": loss, "sizes": sizes}, os.path.join(root, f"rank{rank}.pt"))
    dist.barrier()
    os._exit(0)  # without gloo's teardown (see test_train_loss.py)


def test_rank_batches_cover_every_row_once():
    parts = [rank_batches(25, 8, r, 2) for r in range(2)]
    assert [len(b) for b in parts[0]] == [8, 5] and [len(b) for b in parts[1]] == [8, 4]
    rows = np.sort(np.concatenate([b for p in parts for b in p]))
    assert np.array_equal(rows, np.arange(25))
    with pytest.warns(UserWarning, match="left out"):
        assert [len(b) for b in rank_batches(17, 8, 1, 2)] == [8]  # 1 row left for 2 processes


def test_two_processes_log_the_single_process_validation_loss(tmp_path):
    _cache(tmp_path)
    mp.start_processes(_worker, args=(2, str(tmp_path)), nprocs=2, start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert r0["sizes"] == [8, 5] and r1["sizes"] == [8, 4]
    assert r0["loss"] == pytest.approx(r1["loss"], abs=1e-7)
    single, sizes = _validation_loss(str(tmp_path / "cache"), 2 * BATCH)
    assert sizes == [16, 9]
    assert r0["loss"] == pytest.approx(single, rel=1e-5)

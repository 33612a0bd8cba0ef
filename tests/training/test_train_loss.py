"""CLIP loss: the formula (float64 by hand), and gathered negatives across 2 gloo processes =
one process with the combined batch (loss and gradients), for the streaming and the
materialised loss."""

import math
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from satclip.training.loss import clip_logits, clip_loss


def _hand_loss(img, loc, log_scale):
    """numpy float64: symmetric cross-entropy of scaled cosine similarities."""
    a = img / np.linalg.norm(img, axis=1, keepdims=True)
    b = loc / np.linalg.norm(loc, axis=1, keepdims=True)
    logits = math.exp(log_scale) * a @ b.T

    def ce(z):
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - np.diag(z)))

    return (ce(logits) + ce(logits.T)) / 2


def test_matches_hand_formula():
    g = torch.Generator().manual_seed(0)
    img, loc = torch.randn(12, 8, generator=g), torch.randn(12, 8, generator=g)
    scale = torch.tensor(math.log(1 / 0.07))
    got = float(clip_loss(img, loc, scale))
    assert abs(got - _hand_loss(img.double().numpy(), loc.double().numpy(), float(scale))) < 1e-5


def test_aligned_pairs_score_better_than_shuffled():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 16, generator=g)
    scale = torch.tensor(math.log(1 / 0.07))
    assert float(clip_loss(x, x, scale)) < 0.1 < float(clip_loss(x, x[torch.randperm(32, generator=g)], scale))


def test_logits_shapes_and_labels_single_process():
    img, loc = torch.randn(5, 4), torch.randn(5, 4)
    per_img, per_loc, labels = clip_logits(img, loc, torch.tensor(0.0))
    assert per_img.shape == per_loc.shape == (5, 5) and labels.tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(per_img, per_loc.t())


@pytest.mark.parametrize("a,b", [((4, 8), (5, 8)), ((4, 8), (4, 7)), ((8,), (8,))])
def test_shape_errors(a, b):
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        clip_loss(torch.randn(*a), torch.randn(*b), torch.tensor(0.0))


def _model_and_batch(seed=0, n=16):
    """A location encoder + a linear 'image' encoder, and a batch of (features, lonlat)."""
    import satclip
    torch.manual_seed(seed)
    loc = satclip.LocationEncoder(legendre_polys=4, dim_hidden=16, dim_out=8, dropout=False).double()
    img = torch.nn.Linear(6, 8).double()
    scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07), dtype=torch.float64))
    g = torch.Generator().manual_seed(seed + 1)
    feats = torch.randn(n, 6, generator=g, dtype=torch.float64)
    lonlat = torch.stack([torch.rand(n, generator=g) * 360 - 180, torch.rand(n, generator=g) * 180 - 90], 1).double()
    return loc, img, scale, feats, lonlat


def _loss_and_grads(loc, img, scale, feats, lonlat, gather=True, streaming=True):
    params = list(loc.parameters()) + list(img.parameters()) + [scale]
    loss = clip_loss(img(feats), loc(lonlat), scale, gather=gather, streaming=streaming)
    grads = torch.autograd.grad(loss, params)
    return loss.detach(), grads


def _worker(rank, world, out_dir):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(out_dir, 'rendezvous')}", rank=rank,
                            world_size=world)
    results = {}
    for streaming in (True, False):
        loc, img, scale, feats, lonlat = _model_and_batch()
        rows = slice(rank * len(feats) // world, (rank + 1) * len(feats) // world)
        loss, grads = _loss_and_grads(loc, img, scale, feats[rows], lonlat[rows], streaming=streaming)
        dist.all_reduce(loss)            # DDP-style: average the per-process losses and gradients
        loss /= world
        grads = [g.clone() for g in grads]
        for g in grads:
            dist.all_reduce(g)
            g /= world
        results[streaming] = {"loss": loss, "grads": grads}
    if rank == 0:
        torch.save(results, os.path.join(out_dir, "ddp.pt"))
    dist.barrier()  # the result is on disk before anyone leaves
    # Leave without gloo's teardown: it aborts a process now and then when its peer has already
    # gone (SIGABRT, "terminate called without an active exception"; 2 runs in 12 here).
    os._exit(0)


def test_two_process_gathered_negatives_equal_combined_batch(tmp_path):
    world = 2
    mp.start_processes(_worker, args=(world, str(tmp_path)), nprocs=world,
                       start_method="spawn")
    loss, grads = _loss_and_grads(*_model_and_batch(), streaming=False)  # one process, combined batch
    for streaming, ddp in torch.load(tmp_path / "ddp.pt").items():  # streaming and materialised
        assert abs(float(ddp["loss"]) - float(loss)) < 1e-12, streaming
        for a, b in zip(ddp["grads"], grads):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), streaming
    # and the original (per-process negatives only) is a different objective
    loc, img, scale, feats, lonlat = _model_and_batch()
    local = sum(float(_loss_and_grads(loc, img, scale, feats[s], lonlat[s], gather=False)[0])
                for s in (slice(0, 8), slice(8, 16))) / 2
    assert abs(local - float(loss)) > 1e-3

"""CLIP loss with negatives gathered across processes (with gradients).

The original SatCLIP loss compares each image only with the locations of its own GPU's batch.
Here, when a process group with more than one process is active, every process gathers the
image and location features of all processes (``torch.distributed.nn.all_gather``, whose
backward sends each feature's gradient back to the process that owns it) and scores its own
rows against the whole global batch. The mean of the per-process losses is then exactly the
loss of one process holding the combined batch, and so are the gradients after DDP's average.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gather(x: torch.Tensor, group, sizes: list[int]) -> list[torch.Tensor]:
    """Every process's ``x`` (``sizes[r]`` rows on process r), with gradients flowing back to
    their owners. Rows are padded to the largest size for the collective and cut back after."""
    import warnings

    from torch.distributed.nn.functional import all_gather

    m = max(sizes)
    padded = torch.nn.functional.pad(x, (0, 0, 0, m - x.shape[0])) if x.shape[0] < m else x
    with warnings.catch_warnings():  # torch 2.14 flags it in favour of a private API; it is still the public one
        warnings.simplefilter("ignore", FutureWarning)
        parts = all_gather(padded.contiguous(), group=group)
    return [p[:n] for p, n in zip(parts, sizes)]


def _batch_sizes(n: int, device, group) -> list[int]:
    """The batch size of every process (they differ in the last validation batch)."""
    import torch.distributed as dist

    world = dist.get_world_size(group)
    mine = torch.tensor([n], dtype=torch.int64, device=device)
    out = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(out, mine, group=group)
    return [int(t) for t in out]


def global_mean(loss: torch.Tensor, n: int, group=None) -> tuple[torch.Tensor, int]:
    """``(loss of the global batch, its size)`` from this process's ``loss``, the mean over its own
    ``n`` rows: the row-weighted mean over processes (their batches may differ in size), which
    is the loss one process holding the combined batch would report. Not differentiable (for
    logging); one process: ``(loss, n)``."""
    rank, world = _distributed(group)
    if world == 1:
        return loss.detach(), n
    import torch.distributed as dist

    t = torch.stack([loss.detach().double() * n, torch.tensor(float(n), dtype=torch.float64, device=loss.device)])
    dist.all_reduce(t, group=group)
    return (t[0] / t[1]).to(loss.dtype), int(t[1])


def _distributed(group) -> tuple[int, int]:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def clip_logits(image_features: torch.Tensor, location_features: torch.Tensor, logit_scale: torch.Tensor,
                *, gather: bool = True, group=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scaled cosine similarities of this process's rows against the global batch.

    Args:
        image_features, location_features: ``[B, D]`` (not yet normalised); B may differ between
            processes (the last validation batch).
        logit_scale: scalar log temperature (learnable; exponentiated here, as the original).
        gather: score against all processes' rows when a process group is initialised.

    Returns:
        ``(logits_per_image [B, G], logits_per_location [B, G], labels [B])`` where G is the global
        batch (the sum of every process's B) and ``labels`` index this process's own rows in it.
    """
    img, loc = _normalised(image_features, location_features)
    rank, world = _distributed(group) if gather else (0, 1)
    offset = 0
    if world > 1:
        sizes = _batch_sizes(img.shape[0], img.device, group)
        all_img, all_loc = torch.cat(_gather(img, group, sizes)), torch.cat(_gather(loc, group, sizes))
        offset = sum(sizes[:rank])
    else:
        all_img, all_loc = img, loc
    scale = logit_scale.exp()
    labels = torch.arange(img.shape[0], device=img.device) + offset
    per_image = scale * img @ all_loc.t()
    # one process: the location logits are the transpose (one [B, B] GEMM instead of two)
    per_location = per_image.t() if world == 1 else scale * loc @ all_img.t()
    return per_image, per_location, labels


def _normalised(image_features, location_features):
    if image_features.shape != location_features.shape or image_features.dim() != 2:
        raise ValueError(f"image and location features must both be [B, D], got {list(image_features.shape)} "
                         f"and {list(location_features.shape)}")
    # float32 at least (as the original), float64 kept when both sides are float64
    dtype = torch.promote_types(torch.promote_types(image_features.dtype, location_features.dtype), torch.float32)
    return F.normalize(image_features.to(dtype), dim=1), F.normalize(location_features.to(dtype), dim=1)


def clip_loss(image_features: torch.Tensor, location_features: torch.Tensor, logit_scale: torch.Tensor,
              *, gather: bool = True, group=None, streaming: bool = True, tile: int = 0) -> torch.Tensor:
    """Symmetric InfoNCE of SatCLIP: ``(CE(image -> location) + CE(location -> image)) / 2``.

    With one process this is the original loss. With several (``gather=True``) each process
    returns the loss of its own rows against the global batch; averaging over processes (as DDP
    does with the gradients) gives the single-process loss of the combined batch when the batches
    are equal (training drops the last, short batch); :func:`global_mean` weights unequal ones.

    ``streaming`` (default): the ``satclip::clip_loss_streaming`` op, tile by tile over the keys
    (``tile`` columns, 0 = about 16M logits per tile) with a running log-sum-exp, so neither the
    ``[B, G]`` logits nor their gradient is ever held; ``streaming=False``: the logits
    materialised (:func:`clip_logits`) and ``F.cross_entropy``. Both are the same loss to float
    rounding.
    """
    if not streaming:
        per_image, per_location, labels = clip_logits(image_features, location_features, logit_scale,
                                                      gather=gather, group=group)
        return (F.cross_entropy(per_image, labels) + F.cross_entropy(per_location, labels)) / 2
    from ..ops import ops

    img, loc = _normalised(image_features, location_features)
    scale = logit_scale.exp().to(img.dtype)
    rank, world = _distributed(group) if gather else (0, 1)
    if world == 1:
        return ops.clip_loss_streaming(img, loc, None, None, scale, 0, tile)[0]
    sizes = _batch_sizes(img.shape[0], img.device, group)
    all_img, all_loc = torch.cat(_gather(img, group, sizes)), torch.cat(_gather(loc, group, sizes))
    return ops.clip_loss_streaming(img, loc, all_img, all_loc, scale, sum(sizes[:rank]), tile)[0]

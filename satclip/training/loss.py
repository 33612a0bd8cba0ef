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


def _gather(x: torch.Tensor, group) -> list[torch.Tensor]:
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # torch 2.14 flags it in favour of a private API; it is still the public one
        warnings.simplefilter("ignore", FutureWarning)
        return list(all_gather(x.contiguous(), group=group))


def _distributed(group) -> tuple[int, int]:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def clip_logits(image_features: torch.Tensor, location_features: torch.Tensor, logit_scale: torch.Tensor,
                *, gather: bool = True, group=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scaled cosine similarities of this process's rows against the global batch.

    Args:
        image_features, location_features: ``[B, D]`` (not yet normalised), same B on every process.
        logit_scale: scalar log temperature (learnable; exponentiated here, as the original).
        gather: score against all processes' rows when a process group is initialised.

    Returns:
        ``(logits_per_image [B, W*B], logits_per_location [B, W*B], labels [B])`` where W is the
        number of processes and ``labels`` index this process's own rows in the global batch.
    """
    if image_features.shape != location_features.shape or image_features.dim() != 2:
        raise ValueError(f"image and location features must both be [B, D], got {list(image_features.shape)} "
                         f"and {list(location_features.shape)}")
    # float32 at least (as the original), float64 kept when both sides are float64
    dtype = torch.promote_types(torch.promote_types(image_features.dtype, location_features.dtype), torch.float32)
    img = F.normalize(image_features.to(dtype), dim=1)
    loc = F.normalize(location_features.to(dtype), dim=1)
    rank, world = _distributed(group) if gather else (0, 1)
    if world > 1:
        all_img, all_loc = torch.cat(_gather(img, group)), torch.cat(_gather(loc, group))
    else:
        all_img, all_loc = img, loc
    scale = logit_scale.exp()
    labels = torch.arange(img.shape[0], device=img.device) + rank * img.shape[0]
    per_image = scale * img @ all_loc.t()
    # one process: the location logits are the transpose (one [B, B] GEMM instead of two)
    per_location = per_image.t() if world == 1 else scale * loc @ all_img.t()
    return per_image, per_location, labels


def clip_loss(image_features: torch.Tensor, location_features: torch.Tensor, logit_scale: torch.Tensor,
              *, gather: bool = True, group=None) -> torch.Tensor:
    """Symmetric InfoNCE of SatCLIP: ``(CE(image -> location) + CE(location -> image)) / 2``.

    With one process this is the original loss. With several (``gather=True``) each process
    returns the loss of its own rows against the global batch; averaging over processes (as DDP
    does with the gradients) gives the single-process loss of the combined batch.
    """
    per_image, per_location, labels = clip_logits(image_features, location_features, logit_scale,
                                                  gather=gather, group=group)
    return (F.cross_entropy(per_image, labels) + F.cross_entropy(per_location, labels)) / 2

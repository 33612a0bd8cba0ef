"""The original SatCLIP training transforms, on ``{"image": [C, H, W] float, "point": [2]}`` samples.

* images: 12 Sentinel-2 L2A bands (uint16 digital numbers) / 10000, a zero band inserted at
  index 10 where the MoCo backbones expect B10 -> 13 channels (:func:`satclip.model.bands.s2_to_13_bands`,
  applied by the datasets);
* augmentation: random crop, horizontal and vertical flips, Gaussian blur (kernel 3);
* coordinates: jitter by U[0, 0.01) degrees on lon and lat (as the original: one-sided), then
  latitude clipped to [-90, 90] so a pole patch stays a valid coordinate.
"""

from __future__ import annotations

import torch

JITTER_DEG = 0.01


def jitter(point: torch.Tensor, radius: float = JITTER_DEG, generator=None) -> torch.Tensor:
    """``point + U[0, radius)`` per coordinate (lon, lat), latitude clipped to [-90, 90]."""
    out = point + torch.rand(point.shape, generator=generator, dtype=point.dtype) * radius
    out[..., 1].clamp_(-90.0, 90.0)
    return out


def _tv():
    try:
        from torchvision.transforms import v2
    except ImportError:
        raise ImportError("the training transforms need torchvision: pip install 'satclip[train]'") from None
    return v2


def select_bands(image: torch.Tensor, bands) -> torch.Tensor:
    """``image[bands]`` (channels of the 13-band layout, e.g. ``(3, 2, 1)``: red, green, blue for
    an RGB model); ``bands=None`` keeps all."""
    return image if bands is None else image[list(bands)]


class TrainTransform:
    """Random crop (``crop_size``), flips, blur and coordinate jitter: the original recipe;
    ``bands`` selects the channels first (see :func:`select_bands`)."""

    def __init__(self, crop_size: int = 224, blur: bool = True, jitter_deg: float = JITTER_DEG, bands=None):
        v2 = _tv()
        steps = [v2.RandomCrop(crop_size, pad_if_needed=True), v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
        if blur:
            steps.append(v2.GaussianBlur(3))
        self.augment = v2.Compose(steps)
        self.jitter_deg, self.bands = jitter_deg, bands

    def __call__(self, sample: dict) -> dict:
        out = dict(sample)
        out["image"] = self.augment(select_bands(sample["image"], self.bands))
        out["point"] = jitter(sample["point"], self.jitter_deg)
        return out


class EvalTransform:
    """Centre crop, no augmentation, no jitter (validation and feature caching)."""

    def __init__(self, crop_size: int = 224, bands=None):
        self.crop, self.bands = _tv().CenterCrop(crop_size), bands

    def __call__(self, sample: dict) -> dict:
        return {**sample, "image": self.crop(select_bands(sample["image"], self.bands))}

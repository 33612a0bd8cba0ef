"""The SatCLIP model: image encoder (timm, 13 Sentinel-2 bands) + location encoder + temperature.

Module layout and parameter names are the original's, so a ``state_dict`` written here loads
into the original ``SatCLIP`` (and the original's into this one):

* ``visual``: a timm model with ``in_chans=13`` and ``num_classes=embed_dim`` (the projection to
  the embedding dim is the timm classifier: ``fc`` for ResNets, ``head`` for ViTs);
* ``location``: :class:`satclip.nn.LocationEncoder` (spherical harmonics + SIREN, the compiled
  kernels) or, for every other ``le_type`` x ``pe_type`` of the original (and the
  ``"discretized"`` harmonics), :class:`satclip.nn.ComposedLocationEncoder` (``location.nnet.*``);
* ``nnet``: the *same* network registered a second time, as in the original (so every checkpoint
  carries ``model.nnet.*`` beside ``model.location.nnet.*``);
* ``logit_scale``: learnable log inverse temperature, initialised to ``log(1 / 0.07)``.

``vision_layers`` takes the original names (``moco_resnet18``, ``moco_resnet50``,
``moco_vit16``: SSL4EO-S12 MoCo backbones, frozen except the projection, as in the original) or
the plain timm names (``resnet18``, ``resnet50``, ``vit_small_patch16_224``: trained from scratch
unless ``freeze_backbone=True``). MoCo weights are never downloaded: pass the torchgeo weight
file as ``visual_weights``, or have it in the torch hub cache. As in the original, four ints
(e.g. ``(3, 4, 6, 3)``) build CLIP's ``ModifiedResNet`` and one int CLIP's ``VisionTransformer``
(:mod:`satclip.model.clip_visual`; ``image_resolution``, ``vision_width`` and
``vision_patch_size`` size them), trained from scratch.

``in_channels`` is 13 for Sentinel-2 (and required by the MoCo weights); the other backbones take
any count (e.g. 3 for RGB imagery).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import fused_pair
from ..nn import ComposedLocationEncoder, LocationEncoder
from ..nn.composed_encoder import HARMONICS
from .bands import IN_CHANNELS
from .clip_visual import build_clip_visual
from .config import LOCATION_DTYPES, ModelConfig

# original name -> (timm architecture, torchgeo SSL4EO-S12 MoCo weight file name)
MOCO = {
    "moco_resnet18": ("resnet18", "resnet18_sentinel2_all_moco-59bfdff9.pth"),
    "moco_resnet50": ("resnet50", "resnet50_sentinel2_all_moco-df8b932e.pth"),
    "moco_vit16": ("vit_small_patch16_224", "vit_small_patch16_224_sentinel2_all_moco-67c9032d.pth"),
}
PLAIN = ("resnet18", "resnet50", "vit_small_patch16_224")
VISION_LAYERS = tuple(MOCO) + PLAIN
DEFAULT_IMAGE_RESOLUTION = 224  # the crops the released models saw (224 x 224 of 256 x 256 patches)


def _timm():
    try:
        import timm
    except ImportError:
        raise ImportError("training needs timm for the image encoders: pip install 'satclip[train]'") from None
    return timm


def find_moco_weights(vision_layers: str) -> Path | None:
    """The torchgeo MoCo weight file if it is already in the torch hub cache (never downloads)."""
    if vision_layers not in MOCO:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / MOCO[vision_layers][1]
    return path if path.is_file() else None


def load_visual_weights(visual: nn.Module, path) -> None:
    """Loads a backbone state dict (a torchgeo weight file or any timm-compatible one).

    Only the classifier (the projection to the embedding dim) may be missing or differ in shape;
    anything else that does not fit is refused with the offending keys named.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"backbone weight file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable weight file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    head = visual.default_cfg.get("classifier", "fc") if hasattr(visual, "default_cfg") else "fc"
    own = visual.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
    unexpected = [k for k in state if k not in own]
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not k.startswith(head + ".")]
    if unexpected or wrong or missing:
        raise ValueError(f"{path}: weights do not fit the backbone: unexpected {unexpected[:5]}, "
                         f"wrong shape {wrong[:5]}, missing {missing[:5]}")
    visual.load_state_dict(state, strict=False)


def is_clip_visual(vision_layers) -> bool:
    """Four ints (ModifiedResNet) or one int (VisionTransformer): the original's CLIP encoders."""
    return isinstance(vision_layers, (tuple, list, int)) and not isinstance(vision_layers, bool)


def parse_vision_layers(text: str):
    """``"moco_resnet18"`` -> itself, ``"3,4,6,3"`` -> ``(3, 4, 6, 3)``, ``"12"`` -> ``12`` (the
    command line's spelling of the original's three kinds)."""
    text = str(text).strip().strip("()[]")
    if text.replace(",", "").replace(" ", "").isdigit():
        parts = [int(p) for p in text.split(",") if p.strip()]
        return parts[0] if len(parts) == 1 and "," not in text else tuple(parts)
    return text


def build_visual(vision_layers, embed_dim: int, in_channels: int = IN_CHANNELS, visual_weights=None,
                 pretrained_required: bool = True, image_resolution: int = DEFAULT_IMAGE_RESOLUTION,
                 vision_width: int = 768, vision_patch_size: int = 32) -> nn.Module:
    """Image encoder ``[B, in_channels, H, W] -> [B, embed_dim]``: timm for the names, CLIP's
    ModifiedResNet / VisionTransformer for four ints / one int."""
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
    if is_clip_visual(vision_layers):
        if visual_weights is not None:
            raise ValueError("visual_weights loads timm backbones; a CLIP-style encoder (vision_layers "
                             f"{vision_layers!r}) is trained from scratch or loaded from a SatCLIP checkpoint")
        return build_clip_visual(vision_layers, embed_dim, image_resolution, vision_width, vision_patch_size,
                                 in_channels)
    if vision_layers not in VISION_LAYERS:
        raise ValueError(f"unknown vision_layers {vision_layers!r}; expected one of {VISION_LAYERS}, four ints "
                         "(CLIP ModifiedResNet) or one int (CLIP VisionTransformer)")
    if vision_layers in MOCO and in_channels != IN_CHANNELS and (visual_weights or pretrained_required):
        raise ValueError(f"the {vision_layers} MoCo weights take {IN_CHANNELS} Sentinel-2 channels, not {in_channels}; "
                         f"use {MOCO[vision_layers][0]!r} (from scratch) for other imagery")
    arch = MOCO[vision_layers][0] if vision_layers in MOCO else vision_layers
    kwargs = {"dynamic_img_size": True} if arch.startswith("vit") else {}
    visual = _timm().create_model(arch, pretrained=False, in_chans=in_channels, num_classes=embed_dim, **kwargs)
    weights = visual_weights or find_moco_weights(vision_layers)
    if weights is not None:
        load_visual_weights(visual, weights)
    elif vision_layers in MOCO and pretrained_required:
        raise ValueError(f"vision_layers={vision_layers!r} is a frozen SSL4EO-S12 MoCo backbone, but no weights were "
                         f"given and {MOCO[vision_layers][1]} is not in the torch hub cache "
                         f"({Path(torch.hub.get_dir()) / 'checkpoints'}); pass visual_weights=PATH (torchgeo's file), "
                         f"or use {arch!r} to train the backbone from scratch")
    return visual


class SatCLIP(nn.Module):
    """Image encoder + location encoder + learnable temperature (the original's module tree).

    ``SatCLIP(config)`` with a :class:`~satclip.model.ModelConfig`, or ``SatCLIP(**options)``
    with its field names (``embed_dim``, ``vision_layers``, ``legendre_polys``, ``capacity``, ...;
    the defaults are the config's); both together: the options override the config's values.
    ``pretrained_required`` (default True): a ``moco_*`` backbone without weights is refused
    (False when the weights come from a checkpoint next).
    """

    def __init__(self, config: ModelConfig | None = None, *, pretrained_required: bool = True, **options):
        super().__init__()
        if isinstance(options.get("location_dtype"), torch.dtype):  # torch.float64 as well as "float64"
            options["location_dtype"] = str(options["location_dtype"]).removeprefix("torch.")
        try:
            cfg = dataclasses.replace(config or ModelConfig(), **options)
        except TypeError as exc:
            raise TypeError(f"SatCLIP: {exc} (options are the fields of satclip.model.ModelConfig)") from None
        self.config = cfg
        vision_layers = cfg.visual_layers()
        # the location side first: a bad configuration is named before timm builds anything
        if cfg.le_type == "sphericalharmonics" and cfg.harmonics_calculation not in HARMONICS:
            raise ValueError(f"unknown harmonics_calculation {cfg.harmonics_calculation!r}; expected one of {HARMONICS}")
        if fused_pair({"le_type": cfg.le_type, "pe_type": cfg.pe_type,
                       "harmonics_calculation": cfg.harmonics_calculation}):
            location = LocationEncoder(cfg.legendre_polys, cfg.capacity, cfg.num_hidden_layers, cfg.embed_dim,
                                       harmonics=cfg.harmonics_calculation)
        else:
            location = ComposedLocationEncoder(cfg.le_type, cfg.pe_type, legendre_polys=cfg.legendre_polys,
                                               harmonics_calculation=cfg.harmonics_calculation,
                                               frequency_num=cfg.frequency_num, min_radius=cfg.min_radius,
                                               max_radius=cfg.max_radius, capacity=cfg.capacity,
                                               num_hidden_layers=cfg.num_hidden_layers, embed_dim=cfg.embed_dim)
        self.visual = build_visual(vision_layers, cfg.embed_dim, cfg.in_channels, cfg.visual_weights,
                                   pretrained_required, cfg.image_resolution or DEFAULT_IMAGE_RESOLUTION,
                                   cfg.vision_width, cfg.vision_patch_size)
        self.location = location.to(LOCATION_DTYPES[cfg.location_dtype])
        self.nnet = self.location.nnet  # registered twice, as in the original (model.nnet.* keys)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.in_channels = cfg.in_channels
        clip = is_clip_visual(vision_layers)
        freeze = cfg.freeze_backbone
        self.freeze_backbone = (not clip and vision_layers in MOCO) if freeze is None else bool(freeze)
        if self.freeze_backbone and clip:
            raise ValueError("freeze_backbone needs a timm backbone with a separate classifier; the CLIP-style "
                             f"encoder {vision_layers!r} is trained whole")
        if self.freeze_backbone:
            self.visual.requires_grad_(False)
            self.visual.get_classifier().requires_grad_(True)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            # A frozen backbone keeps its BatchNorm statistics (the original lets them drift in
            # train mode); this also makes cached features equal to on-the-fly ones.
            self.visual.eval()
            self.visual.get_classifier().train(mode)
        return self

    def pooled_features(self, image: torch.Tensor) -> torch.Tensor:
        """Backbone output before the projection, ``[B, F]`` (what the feature cache stores)."""
        return self.visual.forward_head(self.visual.forward_features(image), pre_logits=True)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W]`` -> ``[B, embed_dim]`` (not normalised), in the image
        encoder's dtype."""
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"images must be [B, {self.in_channels}, H, W], got {list(image.shape)}")
        return self.visual(image.to(next(self.visual.parameters()).dtype))

    def encode_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Projection of cached pooled features: the frozen-backbone fast path."""
        return self.visual.get_classifier()(pooled)

    def encode_location(self, lonlat: torch.Tensor) -> torch.Tensor:
        """``[B, 2]`` (lon, lat) degrees -> ``[B, embed_dim]`` in the location tower's dtype (float64
        for the original's and the released models, as the original's ``encode_location``)."""
        dtype = next(self.location.parameters()).dtype
        return self.location(lonlat.to(dtype))

    def forward(self, image: torch.Tensor, lonlat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image_features, location_features)``, both ``[B, embed_dim]`` float32, not normalised
        (the location side cast to float32 here, as the original's ``forward`` does)."""
        return self.encode_image(image), self.encode_location(lonlat).float()

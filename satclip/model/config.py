"""``ModelConfig``: the SatCLIP model's architecture, with every default written once.

The training command's options (:class:`satclip.training.run.TrainConfig` extends this class),
the Lightning module, :class:`~satclip.model.SatCLIP` and the checkpoints' ``hyper_parameters``
all take their defaults from here; ``tests/training/test_config_defaults.py`` holds them equal.
Names are the original SatCLIP's hyper-parameter names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch


def option(text: str, **kw):
    """A dataclass field with its help text (the command line's ``--help`` is built from it)."""
    return field(metadata={"help": text}, **kw)


LOCATION_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class ModelConfig:
    """Image tower + location tower of a SatCLIP model (the original's hyper-parameter names)."""
    embed_dim: int = option("embedding width", default=256)
    vision_layers: str = option("moco_resnet18 | moco_resnet50 | moco_vit16 (frozen MoCo backbones, need weights) or "
                                "resnet18 | resnet50 | vit_small_patch16_224 (trained from scratch), or the original's "
                                "CLIP encoders: four ints '3,4,6,3' (ModifiedResNet) or one int '12' "
                                "(VisionTransformer)", default="resnet18")
    in_channels: int = option("image channels the encoder takes: 13 (Sentinel-2, the MoCo backbones) or e.g. 3 (RGB)",
                              default=13)
    image_resolution: int | None = option("CLIP encoders: the image size their positional embeddings are made for "
                                          "(default: the crop the encoder sees; 224 outside training)", default=None)
    vision_width: int = option("CLIP encoders: stem width (ModifiedResNet; CLIP's RN50: 64) or width (ViT; heads = "
                               "width / 64)", default=768)
    vision_patch_size: int = option("CLIP VisionTransformer: patch size in pixels", default=32)
    visual_weights: str | None = option("torchgeo SSL4EO-S12 MoCo weight file for moco_* backbones", default=None)
    freeze_backbone: bool | None = option("train only the image projection (default: yes for moco_*)", default=None)
    le_type: str = option("positional encoding: sphericalharmonics (released models), direct, cartesian3d, wrap, "
                          "theory, grid, spherec, spherecplus, spherem, spheremplus", default="sphericalharmonics")
    pe_type: str = option("network: siren (released models), linear, mlp, fcnet", default="siren")
    legendre_polys: int = option("SH degree count L (L*L features)", default=10)
    harmonics_calculation: str = option("SH: analytic (released models), closed-form or discretized (the original's "
                                        "360 x 180 table lookup)", default="analytic")
    frequency_num: int = option("frequencies of theory / grid / sphere* encodings", default=16)
    min_radius: float = option("smallest radius of the frequency encodings' geometric series", default=1.0)
    max_radius: float = option("largest radius of the frequency encodings' geometric series", default=260.0)
    capacity: int = option("hidden width of the network", default=512)
    num_hidden_layers: int = option("hidden layers of the network (SIREN: sine layers)", default=2)
    location_dtype: str = option("float32 (fast) or float64 (the original's)", default="float32")

    def __post_init__(self):
        if self.location_dtype not in LOCATION_DTYPES:
            raise ValueError(f"location_dtype must be one of {list(LOCATION_DTYPES)}, got {self.location_dtype!r}")
        if not isinstance(self.in_channels, int) or isinstance(self.in_channels, bool) or self.in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {self.in_channels!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(ModelConfig))

    @classmethod
    def from_values(cls, values: dict) -> "ModelConfig":
        """The configuration of ``values`` (other keys, such as a checkpoint's training options,
        are ignored; missing ones take the defaults)."""
        return ModelConfig(**{k: v for k, v in values.items() if k in cls.names()})

    def model_values(self) -> dict:
        """This configuration's model options only (also for a subclass such as ``TrainConfig``)."""
        return {k: getattr(self, k) for k in ModelConfig.names()}

    def visual_layers(self):
        """``vision_layers`` as the model takes it (a name, a tuple of four ints or an int)."""
        from .satclip_model import parse_vision_layers
        return parse_vision_layers(self.vision_layers)

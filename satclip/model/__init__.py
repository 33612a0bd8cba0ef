"""The SatCLIP model: image tower + location tower + temperature, shared by training and
inference (:mod:`satclip.training` trains it, :mod:`satclip.imagery` runs it; inference never
imports training).

* :mod:`.config`         ``ModelConfig``: the architecture's options, every default written once
* :mod:`.satclip_model`  ``SatCLIP`` (timm or CLIP-style image encoder + location encoder), backbones
* :mod:`.clip_visual`    the original's CLIP ModifiedResNet / VisionTransformer image encoders
* :mod:`.bands`          the image tower's input convention (12 Sentinel-2 bands -> 13 channels)

Needs timm for the timm backbones. May import :mod:`satclip.checkpoint`, :mod:`satclip.nn` and
below; not :mod:`satclip.training`, :mod:`satclip.imagery`, :mod:`satclip.embedding`,
:mod:`satclip.evaluation` or :mod:`satclip.cli`.
"""

from .config import ModelConfig
from .satclip_model import SatCLIP

__all__ = ["ModelConfig", "SatCLIP"]

"""The image side at inference: the whole SatCLIP model from a checkpoint (:mod:`.loading`:
``load_model``), image embeddings of GeoTIFF patches (:mod:`.images`: ``satclip embed-images``)
and image-to-location retrieval (:mod:`.locate`: ``satclip locate``).

Needs timm for the timm backbones (the ``train`` extra) and rasterio for GeoTIFFs; nothing here
is imported by ``import satclip`` until used. May import :mod:`satclip.model` (the model's
module tree), :mod:`satclip.embedding` (formats, grids), :mod:`satclip.checkpoint` and below; not
:mod:`satclip.training` (inference never depends on training) or :mod:`satclip.cli`.
"""

from .locate import Gallery, locate
from .loading import load_model

__all__ = ["Gallery", "load_model", "locate"]

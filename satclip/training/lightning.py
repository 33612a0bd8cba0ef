"""Lightning wrappers: :class:`SatCLIPLightningModule` and :class:`SatCLIPDataModule`.

The module's constructor takes the original ``SatCLIPLightningModule``'s arguments (same names,
the original recipe's values as defaults where they apply to SatCLIP: AdamW, lr 1e-4, weight
decay 0.01) plus this package's options. Checkpoints it writes carry exactly the original's
``hyper_parameters`` (with the three extra keys of the released files) and the original's
``state_dict`` layout, so the original loaders accept them; this package's own options are kept
in the checkpoint under ``"satclip"``. ``satclip.load`` reads the location encoder from them.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import torch

try:
    import lightning as L
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("training needs Lightning: pip install 'satclip[train]'") from exc

from .._version import __version__
from ..model import ModelConfig, SatCLIP
from ..model.satclip_model import DEFAULT_IMAGE_RESOLUTION, MOCO, parse_vision_layers
from .loss import clip_loss, global_mean

# The original constructor's arguments that this package writes into hyper_parameters.
ORIGINAL_HPARAMS = ("embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size",
                    "in_channels", "le_type", "pe_type", "frequency_num", "max_radius", "min_radius",
                    "legendre_polys", "harmonics_calculation", "sh_embedding_dims", "learning_rate",
                    "weight_decay", "num_hidden_layers", "capacity")
# Present in the released checkpoints and popped by the original loader before construction.
RELEASED_EXTRA_KEYS = {"eval_downstream": False, "air_temp_data_path": None, "election_data_path": None}
# This package's options beside the original's hyper-parameters (kept under checkpoint["satclip"]).
OPTIONS = ("vision_layers", "visual_weights", "freeze_backbone", "location_dtype", "gather_negatives", "streaming_loss")
ORIGINAL_NAME = {arch: name for name, (arch, _) in MOCO.items()}
SH_EMBEDDING_DIMS = 32  # an original hyper-parameter that no original model uses; written for its loader
# The optimisation options of the module (the original recipe's values), beside the ModelConfig.
TRAINING_DEFAULTS = {"learning_rate": 1e-4, "weight_decay": 0.01, "gather_negatives": True, "streaming_loss": True}


class SatCLIPLightningModule(L.LightningModule):
    """SatCLIP contrastive training (image <-> location) with the CLIP loss.

    ``SatCLIPLightningModule(config, learning_rate=..., ...)`` with a
    :class:`~satclip.model.ModelConfig` (default: its defaults), or the original module's keyword
    arguments (``embed_dim=...``, ``vision_layers=...``: the config's field names, which are the
    original's); the original's other arguments (``sh_embedding_dims``, ``eval_downstream``, ...)
    are accepted and ignored. Optimisation: AdamW with ``learning_rate`` (1e-4) and
    ``weight_decay`` (0.01); ``gather_negatives``: with several processes, score against the
    negatives of all of them; ``streaming_loss``: the CLIP loss tile by tile.

    Batches are ``{"image": [B, 13, H, W], "point": [B, 2]}`` or, in frozen-backbone cached mode,
    ``{"features": [B, F], "point": [B, 2]}`` (points are lon, lat in degrees, lon first).
    """

    def __init__(self, config: ModelConfig | None = None, *, pretrained_required: bool = True, **options):
        super().__init__()
        ignored = {"sh_embedding_dims", *RELEASED_EXTRA_KEYS}
        training = {k: options.pop(k, v) for k, v in TRAINING_DEFAULTS.items()}
        unknown = set(options) - set(ModelConfig.names()) - ignored
        if unknown:
            raise TypeError(f"SatCLIPLightningModule: unknown options {sorted(unknown)}; expected the fields of "
                            f"satclip.model.ModelConfig or {sorted(TRAINING_DEFAULTS)}")
        config = dataclasses.replace(config or ModelConfig(),
                                     **{k: v for k, v in options.items() if k not in ignored})
        self.save_hyperparameters({**config.model_values(), **training})
        self.model = SatCLIP(config, pretrained_required=pretrained_required)

    # -- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        hp = {k: self.hparams.get(k) for k in ORIGINAL_HPARAMS}
        hp["sh_embedding_dims"] = SH_EMBEDDING_DIMS
        hp["image_resolution"] = self.hparams["image_resolution"] or DEFAULT_IMAGE_RESOLUTION
        # The original only knows the moco_* names; a plain backbone of the same architecture has
        # the same state_dict layout, so it is recorded under that name (the real one is kept below).
        vision_layers = parse_vision_layers(hp["vision_layers"])
        if isinstance(vision_layers, str):
            hp["vision_layers"] = ORIGINAL_NAME.get(vision_layers, vision_layers)
        else:  # the original's CLIP encoders: a list of four ints or an int, as it takes them
            hp["vision_layers"] = list(vision_layers) if isinstance(vision_layers, tuple) else vision_layers
        hp.update(RELEASED_EXTRA_KEYS)
        checkpoint["hyper_parameters"] = hp
        checkpoint["satclip"] = {"version": __version__, "options": {k: self.hparams[k] for k in OPTIONS}}

    @classmethod
    def from_checkpoint(cls, path, map_location="cpu", **overrides) -> "SatCLIPLightningModule":
        """Rebuilds the module from a checkpoint of this package or of the original."""
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
        hp = {k: v for k, v in (ckpt.get("hyper_parameters") or {}).items() if k in ORIGINAL_HPARAMS and v is not None}
        hp.update((ckpt.get("satclip") or {}).get("options", {}))
        hp.update(overrides)
        hp.pop("sh_embedding_dims", None)
        if isinstance(hp.get("vision_layers"), (list, tuple, int)):
            hp["vision_layers"] = str(tuple(hp["vision_layers"]) if isinstance(hp["vision_layers"], list)
                                      else hp["vision_layers"])
        module = cls(**hp, pretrained_required=False)
        module.load_state_dict(ckpt["state_dict"])
        return module

    # -- steps ---------------------------------------------------------------------------------
    def _loss(self, batch: dict) -> torch.Tensor:
        point = batch["point"]
        if "features" in batch:
            image_features = self.model.encode_pooled(batch["features"])
        else:
            image_features = self.model.encode_image(batch["image"])
        location_features = self.model.encode_location(point).float()  # as the original's forward
        return clip_loss(image_features, location_features, self.model.logit_scale,
                         gather=self.hparams.gather_negatives, streaming=self.hparams.get("streaming_loss", True))

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        n = batch["point"].shape[0]
        self.log("train_loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        self.log("temperature", 1.0 / self.model.logit_scale.detach().exp(), batch_size=n)
        return loss

    def validation_step(self, batch, batch_idx):
        # Validation batches may differ in size between processes (the last one is split as
        # evenly as it goes, see SatCLIPDataModule): log the row-weighted loss of the global
        # batch, the same on every process, so the epoch mean is that of one process.
        loss, n = global_mean(self._loss(batch), batch["point"].shape[0])
        self.log("val_loss", loss, prog_bar=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        groups = parameter_groups(self.model, self.hparams.weight_decay)
        try:  # one fused kernel per step instead of a loop over the parameters (same update)
            return torch.optim.AdamW(groups, lr=self.hparams.learning_rate, fused=True)
        except (RuntimeError, ValueError):  # a device or dtype the fused kernel does not take
            return torch.optim.AdamW(groups, lr=self.hparams.learning_rate)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The original's AdamW groups: no weight decay on gains and biases (parameters with fewer
    than 2 dimensions, names containing "bn", "ln" or "bias") nor on ``logit_scale``; the rest
    decays by ``weight_decay``. Frozen parameters are left out."""
    def exempt(name, p):
        return p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if exempt(n, p)], "weight_decay": 0.0},
            {"params": [p for n, p in named if not exempt(n, p)], "weight_decay": weight_decay}]


class SatCLIPDataModule(L.LightningDataModule):
    """Train/validation loaders over an S2-100K directory, the Blue Marble demo set, or a
    frozen-backbone feature cache.

    Args:
        data: ``"bluemarble"``, an S2-100K directory (``index.csv`` + ``images/``), or a feature
            cache directory written by :func:`satclip.training.features.cache_features`.
        batch_size: per process (the original: 512, with 16 accumulation steps).
        crop_size: random-crop size (default: 224 for S2-100K, the patch size for Blue Marble).
        val_fraction: share of samples held out (a fixed split drawn with ``seed``).
        bluemarble_size, patch_px: size of the Blue Marble demo set.
        bands: channels of the 13-band layout the model sees (default all 13; ``(3, 2, 1)`` for an
            RGB model with ``in_channels=3``).
    """

    def __init__(self, data="bluemarble", batch_size: int = 512, num_workers: int = 0, crop_size: int | None = None,
                 val_fraction: float = 0.1, seed: int = 0, bluemarble_size: int = 8192, patch_px: int = 32,
                 pin_memory: bool | None = None, bands=None):
        super().__init__()
        if bands is not None:
            bands = tuple(int(b) for b in bands)
            if not bands or min(bands) < 0 or max(bands) > 12:
                raise ValueError(f"bands are channel indices of the 13-band layout (0..12), got {bands}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (contrastive batches need negatives), got {batch_size}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.data, self.batch_size, self.num_workers = data, batch_size, num_workers
        self.crop_size, self.val_fraction, self.seed = crop_size, val_fraction, seed
        self.bluemarble_size, self.patch_px, self.bands = bluemarble_size, patch_px, bands
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.train_set = self.val_set = None

    def kind(self) -> str:
        from pathlib import Path
        if str(self.data) == "bluemarble":
            return "bluemarble"
        p = Path(self.data)
        if (p / "features.npy").exists() or (p / "meta.json").exists():
            return "features"
        return "s2100k"

    def datasets(self, train_transform=True):
        """(train dataset, validation dataset or None), built once."""
        from torch.utils.data import Subset

        from .transforms import EvalTransform, TrainTransform

        kind = self.kind()
        if kind == "features":
            from .features import FeatureDataset
            full = FeatureDataset(self.data)
            n = len(full)
            train, val = self._split(n)
            val_ds = None
            if len(val):
                val_ds = full.subset(val)
                val_ds.jitter_deg = 0.0  # validation: no augmentation, as EvalTransform for images
            return full.subset(train), val_ds
        if kind == "bluemarble":
            from .bluemarble import BlueMarbleDataset
            crop = self.crop_size or self.patch_px
            make = lambda t: BlueMarbleDataset(self.bluemarble_size, self.patch_px, seed=self.seed, transform=t)
        else:
            from .s2100k import S2100KDataset
            crop = self.crop_size or 224
            make = lambda t: S2100KDataset(self.data, transform=t)
        b = self.bands
        train_ds = make(TrainTransform(crop, bands=b) if train_transform else EvalTransform(crop, bands=b))
        val_ds = None
        if self.val_fraction > 0:  # the same samples (patches cut / index read once), other transform
            val_ds = copy.copy(train_ds)
            val_ds.transform = EvalTransform(crop, bands=b)
        train, val = self._split(len(train_ds))
        return Subset(train_ds, train.tolist()), (Subset(val_ds, val.tolist()) if len(val) else None)

    def _split(self, n: int):
        perm = np.random.default_rng(self.seed).permutation(n)
        n_val = int(math.floor(n * self.val_fraction))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def setup(self, stage=None):
        if self.train_set is None:
            self.train_set, self.val_set = self.datasets()
            if len(self.train_set) < self.batch_size:
                raise ValueError(f"the training split has {len(self.train_set)} samples, fewer than one batch of "
                                 f"{self.batch_size}; lower batch_size")

    def _loader(self, ds, train: bool):
        from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

        common = dict(num_workers=self.num_workers, pin_memory=self.pin_memory,
                      persistent_workers=self.num_workers > 0)
        if self.kind() == "features":  # whole batches per fetch (see FeatureDataset)
            sampler = RandomSampler(ds) if train else SequentialSampler(ds)
            batches = BatchSampler(sampler, self.batch_size, drop_last=train)
            return DataLoader(ds, batch_size=None, sampler=batches, **common)
        # drop_last: every process must bring the same number of rows to the gathered loss.
        return DataLoader(ds, batch_size=self.batch_size, shuffle=train, drop_last=train, **common)

    def train_dataloader(self):
        return self._loader(self.train_set, True)

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.global_rank, trainer.world_size
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def val_dataloader(self):
        if self.val_set is None or len(self.val_set) < 2:
            return []
        rank, world = self._rank_world()
        if world == 1:
            return self._loader(self.val_set, False)
        # Several processes: no DistributedSampler (it pads with repeated rows and splits by
        # stride). Global batch k is rows [k*G, (k+1)*G) of the validation set, G = world *
        # batch_size, as one process with batch G would see them; each process takes one
        # contiguous part (the last, short batch split as evenly as it goes).
        from torch.utils.data import DataLoader, DistributedSampler

        batches = rank_batches(len(self.val_set), self.batch_size, rank, world)
        ds = _Batched(self.val_set, batches, features=self.kind() == "features")
        # A DistributedSampler over this process's own batches, so Lightning adds none of its own.
        sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=False)
        return DataLoader(ds, batch_size=None, sampler=sampler, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)


def rank_batches(n: int, batch_size: int, rank: int, world: int) -> list[np.ndarray]:
    """The validation rows process ``rank`` of ``world`` takes, batch by batch: global batch k is
    rows ``[k*G, (k+1)*G)``, ``G = world * batch_size``, cut into ``world`` contiguous parts as
    even as possible. A last global batch with fewer rows than processes is left out (every
    process must take part in every step), with a warning."""
    g = world * batch_size
    out = []
    for lo in range(0, n, g):
        rows = np.arange(lo, min(n, lo + g))
        if len(rows) < world:
            import warnings
            warnings.warn(f"validation: the last {len(rows)} of {n} rows are left out, fewer than the {world} "
                          "processes (choose a validation size that leaves at least one row per process)")
            break
        out.append(np.array_split(rows, world)[rank])
    return out


class _Batched(torch.utils.data.Dataset):
    """Item k = the k-th batch (a list of row indices of ``ds``), collated."""

    def __init__(self, ds, batches, features: bool):
        self.ds, self.batches, self.features = ds, batches, features

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> dict:
        rows = self.batches[k]
        if self.features:  # FeatureDataset takes a whole list of rows at once
            return self.ds[rows]
        from torch.utils.data import default_collate
        return default_collate([self.ds[int(i)] for i in rows])

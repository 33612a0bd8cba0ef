"""``satclip train``: one configuration (file and/or flags) -> a Lightning run in ``out/``.

Output directory: ``checkpoints/`` (every ``ckpt_every`` steps and ``last.ckpt``; original
SatCLIP layout), ``logs/version_<k>/metrics.csv`` (one version per start or resume),
``config.json`` (the full configuration of the run),
``location.safetensors`` (the location-only export, rewritten at the end of each run) and, in
frozen-backbone cached mode, ``features/`` (the image-feature cache).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..model.config import ModelConfig, option as _h


@dataclass
class TrainConfig(ModelConfig):
    """Every option of a training run: the model's (:class:`~satclip.model.ModelConfig`, whose
    defaults are the ones used everywhere) and the run's; defaults are the original recipe where
    it applies."""
    out: str = _h("output directory (checkpoints, metrics, export)", default="satclip-train")
    data: str = _h("'bluemarble' (bundled demo imagery) or an S2-100K directory (index.csv + images/)",
                   default="bluemarble")
    bands: str | None = _h("channels of the 13-band layout fed to the model, comma-separated (default: all 13; "
                           "'3,2,1' = red, green, blue when in_channels is 3)", default=None)
    cache_features: bool = _h("frozen backbone only: compute image features once, then train the location side "
                              "at GEMM speed (no image augmentation)", default=False)
    recipe: str = _h("'fast' or 'original': the original's schedule as the defaults of the options below "
                     "(max_epochs 500, checkpoint_on val_loss, location_dtype float64); options given explicitly "
                     "still win", default="fast")
    learning_rate: float = _h("AdamW learning rate", default=1e-4)
    weight_decay: float = _h("AdamW weight decay", default=0.01)
    batch_size: int = _h("batch per process (the original: 512)", default=512)
    accumulate_grad_batches: int = _h("gradient accumulation: batches per optimizer step (the original's 16: "
                                      "8,192 samples per step with batch_size 512)", default=16)
    max_steps: int = _h("optimizer steps (-1: use max_epochs)", default=-1)
    max_epochs: int | None = _h("epochs (default: Lightning's, when max_steps is -1)", default=None)
    checkpoint_on: str = _h("'step': a checkpoint every ckpt_every steps (keep_checkpoints newest kept); "
                            "'val_loss': the checkpoint of the lowest validation loss, named "
                            "epoch=E-val_loss=V.ckpt (the original's); last.ckpt either way", default="step")
    crop_size: int | None = _h("random crop (default 224 for S2-100K, the patch size for Blue Marble)", default=None)
    val_fraction: float = _h("held-out share of the samples", default=0.1)
    bluemarble_size: int = _h("Blue Marble demo: number of patches", default=8192)
    patch_px: int = _h("Blue Marble demo: patch size in pixels (15 px per degree)", default=32)
    num_workers: int = _h("DataLoader worker processes", default=0)
    accelerator: str = _h("cpu | gpu | auto", default="auto")
    devices: str = _h("devices per node (number or 'auto')", default="auto")
    num_nodes: int = _h("nodes (DDP across nodes through Lightning)", default=1)
    strategy: str = _h("Lightning strategy (auto | ddp | ddp_spawn | ...)", default="auto")
    gather_negatives: bool = _h("score against the negatives of all processes", default=True)
    streaming_loss: bool = _h("CLIP loss tile by tile with a running log-sum-exp, never holding the [B, B_global] "
                              "logits (--no-streaming-loss: materialise them, as the original)", default=True)
    log_every: int = _h("log the training loss every N steps", default=10)
    ckpt_every: int = _h("write a checkpoint every N optimizer steps", default=500)
    keep_checkpoints: int = _h("how many step checkpoints to keep besides last.ckpt", default=3)
    seed: int = _h("random seed (data split, init, sampling)", default=0)
    init_from: str | None = _h("fine-tune: start from a SatCLIP .ckpt (image + location weights, original or "
                               "this package's) or a location-only .safetensors export", default=None)

    def __post_init__(self):
        super().__post_init__()
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {self.recipe!r}")
        if self.checkpoint_on not in ("step", "val_loss"):
            raise ValueError(f"checkpoint_on must be 'step' or 'val_loss', got {self.checkpoint_on!r}")
        if self.checkpoint_on == "val_loss" and self.val_fraction == 0:
            raise ValueError("checkpoint_on='val_loss' needs a validation split (val_fraction > 0)")
        if self.band_indices() is not None and len(self.band_indices()) != self.in_channels:
            raise ValueError(f"bands {self.bands!r} select {len(self.band_indices())} channels but in_channels is "
                             f"{self.in_channels}")
        if self.in_channels not in (3, 13) and self.bands is None:
            raise ValueError(f"in_channels={self.in_channels}: say which channels of the 13-band layout with bands "
                             "(defaults exist for 13: all, and 3: red, green, blue)")
        if self.accumulate_grad_batches < 1:
            raise ValueError(f"accumulate_grad_batches must be >= 1, got {self.accumulate_grad_batches}")

    def band_indices(self) -> tuple | None:
        """The channels the data module selects (None: all 13)."""
        if self.bands is not None:
            return tuple(int(b) for b in str(self.bands).replace(" ", "").split(",") if b != "")
        return (3, 2, 1) if self.in_channels == 3 else None

    def model_config(self) -> ModelConfig:
        """The model's options; the CLIP encoders' ``image_resolution`` defaults to the crop the
        image encoder sees (224 for S2-100K, the patch size for Blue Marble)."""
        crop = self.crop_size or (self.patch_px if str(self.data) == "bluemarble" else 224)
        return ModelConfig(**{**self.model_values(), "image_resolution": self.image_resolution or crop})

    @classmethod
    def for_recipe(cls, recipe: str = "fast", **values) -> "TrainConfig":
        """The configuration of ``recipe`` with ``values`` given explicitly on top."""
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
        return cls(**{**RECIPES[recipe], **values, "recipe": recipe})

    @classmethod
    def from_file(cls, path) -> dict:
        """Options from a JSON or YAML file (unknown keys are refused)."""
        path = Path(os.fspath(path))
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml
            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of options, got {type(values).__name__}")
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown options {sorted(unknown)}")
        return values


# Each recipe's defaults for options not given explicitly. "original": microsoft/satclip's
# configs/default.yaml and main.py (500 epochs, ModelCheckpoint on val_loss + last, the location
# encoder in float64); its batch 512 x 16 accumulation and AdamW groups are the defaults anyway.
RECIPES = {"fast": {}, "original": {"max_epochs": 500, "checkpoint_on": "val_loss", "location_dtype": "float64"}}


def _module_kwargs(cfg: TrainConfig) -> dict:
    """The Lightning module's arguments: the model's configuration and the optimisation options."""
    return dict(config=cfg.model_config(), learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
                gather_negatives=cfg.gather_negatives, streaming_loss=cfg.streaming_loss)


def _launched_worker() -> bool:
    """True in the processes Lightning's DDP launcher starts besides the first one (they re-run
    this command and must not treat the directory the first process just made as an old run)."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK"))


def _prepare_out(cfg: TrainConfig, resume: bool, overwrite: bool) -> Path:
    out = Path(cfg.out)
    saved = out / "config.json"
    if _launched_worker():
        return out
    if out.exists() and any(out.iterdir()):
        if overwrite:
            shutil.rmtree(out)
        elif not resume:
            raise FileExistsError(f"{out} already holds a run; pass --resume to continue it from its last checkpoint "
                                  "or --overwrite to start again")
        elif saved.exists():
            before = json.loads(saved.read_text())
            changed = {k: (before.get(k), v) for k, v in dataclasses.asdict(cfg).items()
                       if k not in ("max_steps", "max_epochs", "num_workers", "devices", "num_nodes", "strategy",
                                    "accelerator", "ckpt_every", "keep_checkpoints", "log_every")
                       and k in before and before[k] != v}  # an option added since the run began: not compared
            if changed:
                raise ValueError(f"cannot resume {out}: the configuration differs from the saved one "
                                 f"(option: (saved, now)) {changed}")
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    return out


def _init_from(module, path) -> None:
    """Copies the weights of a checkpoint into ``module`` (same architecture required)."""
    import torch

    from ..checkpoint import encoder_from_lightning, is_safetensors, read_lightning, load

    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"--init-from: checkpoint not found: {path}")
    ckpt = None if is_safetensors(path) else read_lightning(path, weights_only=True)  # read once
    enc = load(path) if ckpt is None else encoder_from_lightning(ckpt, path, None, torch.float64)
    want = module.model.location.config()
    if enc.config() != want:
        diff = {k: (v, want[k]) for k, v in enc.config().items() if want.get(k) != v}
        raise ValueError(f"--init-from {path}: its location encoder differs from the configured one "
                         f"(option: (checkpoint, configured)) {diff}; set those options to the checkpoint's values")
    module.model.location.load_state_dict(enc.state_dict())
    if ckpt is None:
        return  # location-only export: the image side starts from its own initialisation
    state = ckpt["state_dict"]
    rest = {k[len("model."):]: v for k, v in state.items()
            if k.startswith(("model.visual.", "model.logit_scale"))}
    if rest:
        try:
            res = module.model.load_state_dict(rest, strict=False)
            bad = res.unexpected_keys + [k for k in res.missing_keys if k.startswith("visual.")]
            if bad:
                raise RuntimeError(f"keys that do not match: {bad[:5]}")
        except RuntimeError as exc:
            raise ValueError(f"--init-from {path}: its image encoder does not fit --vision-layers "
                             f"{module.hparams.vision_layers}: {exc}") from None


@contextlib.contextmanager
def lightning_speaks_only_of_problems():
    """Lightning's own chatter (its start-up info lines, an advertising tip, deprecation notes
    about its internals) is not the user's business: inside this block its loggers pass warnings
    and errors only, and deprecation warnings raised in its modules are dropped. Everything of
    this package's, and Lightning's real warnings, still show."""
    import logging
    import warnings

    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric",
                                              "lightning.pytorch.utilities.rank_zero")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=r"lightning(\.|$)")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, quiet: bool = False):
    """Runs (or resumes) a training run; returns the trained :class:`SatCLIPLightningModule`."""
    with lightning_speaks_only_of_problems():
        return _train(cfg, resume=resume, overwrite=overwrite, quiet=quiet)


def _train(cfg: TrainConfig, *, resume: bool, overwrite: bool, quiet: bool):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from ..checkpoint import save
    from .lightning import SatCLIPDataModule, SatCLIPLightningModule

    L.seed_everything(cfg.seed, verbose=False)
    from ..checkpoint import is_safetensors

    full_init = bool(cfg.init_from) and Path(cfg.init_from).is_file() and not is_safetensors(Path(cfg.init_from))
    # a full checkpoint brings its own backbone weights, so moco_* needs no weight file then
    module = SatCLIPLightningModule(**_module_kwargs(cfg), pretrained_required=not full_init)
    if cfg.init_from:
        _init_from(module, cfg.init_from)
    dm_kwargs = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, crop_size=cfg.crop_size,
                     val_fraction=cfg.val_fraction, seed=cfg.seed, bluemarble_size=cfg.bluemarble_size,
                     patch_px=cfg.patch_px, bands=cfg.band_indices())
    # Model and data are checked before the output directory is touched, so a refused run
    # leaves nothing behind that a corrected command would have to --overwrite.
    if cfg.cache_features:
        if not module.model.freeze_backbone:
            raise ValueError("cache_features needs a frozen backbone (a moco_* backbone, or freeze_backbone=True)")
        full, _ = SatCLIPDataModule(cfg.data, **{**dm_kwargs, "val_fraction": 0.0}).datasets(train_transform=False)
    else:
        dm = SatCLIPDataModule(cfg.data, **dm_kwargs)
        dm.setup()
    out = _prepare_out(cfg, resume, overwrite)
    if cfg.cache_features:
        from .features import cache_features
        cache = cache_features(module.model, full, out / "features", num_workers=cfg.num_workers,
                               progress=not quiet and sys.stderr.isatty())
        dm = SatCLIPDataModule(str(cache), **dm_kwargs)
    if cfg.checkpoint_on == "val_loss":  # the original's callback: best validation loss + last
        ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="{epoch}-{val_loss:.2f}", monitor="val_loss",
                               mode="min", save_last=True, save_top_k=1)
    else:
        ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="step={step}", auto_insert_metric_name=False,
                               every_n_train_steps=cfg.ckpt_every, save_last=True, monitor="step", mode="max",
                               save_top_k=cfg.keep_checkpoints)
    devices = int(cfg.devices) if str(cfg.devices).isdigit() else cfg.devices
    trainer = L.Trainer(default_root_dir=out, max_steps=cfg.max_steps, max_epochs=cfg.max_epochs,
                        accumulate_grad_batches=cfg.accumulate_grad_batches, accelerator=cfg.accelerator,
                        devices=devices, num_nodes=cfg.num_nodes, strategy=cfg.strategy, callbacks=[ckpt],
                        logger=CSVLogger(out, name="logs"), log_every_n_steps=cfg.log_every,
                        limit_val_batches=0 if cfg.val_fraction == 0 else None,
                        enable_progress_bar=not quiet and sys.stderr.isatty(), enable_model_summary=not quiet,
                        num_sanity_val_steps=0)
    last = out / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume and last.exists() else None)
    # the final state, also when it falls between two ckpt_every steps (with optimizer: resumable)
    trainer.save_checkpoint(last, weights_only=False)
    if trainer.is_global_zero:
        save(module.model.location, out / "location.safetensors", overwrite=True)
    return module

"""One source of truth for the model's options: the command line's defaults (``satclip train``),
the Python defaults (``ModelConfig``, ``SatCLIP``, ``SatCLIPLightningModule``) and what a
checkpoint records in ``hyper_parameters`` (the original's names) and under ``satclip`` agree."""

import dataclasses

import pytest
import torch

pytest.importorskip("timm")
pytest.importorskip("lightning")

from satclip.cli.main import build_parser  # noqa: E402
from satclip.cli.train import config_from_args  # noqa: E402
from satclip.model import ModelConfig, SatCLIP  # noqa: E402
from satclip.model.satclip_model import DEFAULT_IMAGE_RESOLUTION  # noqa: E402
from satclip.training.lightning import (ORIGINAL_HPARAMS, ORIGINAL_NAME, TRAINING_DEFAULTS,  # noqa: E402
                                        SatCLIPLightningModule)
from satclip.training.run import TrainConfig, _module_kwargs  # noqa: E402


def test_command_line_defaults_are_the_model_config_defaults():
    args = build_parser().parse_args(["train"])
    cli = config_from_args(args)
    assert cli.model_values() == ModelConfig().model_values()
    for name in ModelConfig.names():  # and argparse itself adds no default of its own
        assert getattr(args, name) is None


def test_training_options_default_to_the_lightning_module_defaults():
    cfg = TrainConfig()
    assert {k: getattr(cfg, k) for k in TRAINING_DEFAULTS} == TRAINING_DEFAULTS


def test_python_defaults_agree():
    model = SatCLIP()
    assert model.config == ModelConfig()
    module = SatCLIPLightningModule()
    assert {k: module.hparams[k] for k in ModelConfig.names()} == ModelConfig().model_values()
    assert model.location.config()["legendre_polys"] == ModelConfig.legendre_polys
    assert model.location.config()["capacity"] == ModelConfig.capacity
    assert model.location.config()["num_hidden_layers"] == ModelConfig.num_hidden_layers
    assert next(model.location.parameters()).dtype == torch.float32  # location_dtype "float32"
    assert model.visual.fc.out_features == ModelConfig.embed_dim


def test_checkpoint_records_the_defaults():
    cfg = TrainConfig()
    module = SatCLIPLightningModule(**_module_kwargs(cfg))
    ckpt = {}
    module.on_save_checkpoint(ckpt)
    hp, options = ckpt["hyper_parameters"], ckpt["satclip"]["options"]
    want = ModelConfig().model_values()
    for name in ORIGINAL_HPARAMS:
        if name in ("learning_rate", "weight_decay"):
            assert hp[name] == TRAINING_DEFAULTS[name]
        elif name == "vision_layers":  # the original knows the architecture by its MoCo name
            assert hp[name] == ORIGINAL_NAME[want[name]] and options[name] == want[name]
        elif name == "image_resolution":  # Blue Marble training: the crop the encoder sees
            assert hp[name] == cfg.patch_px
        elif name in want:
            assert hp[name] == want[name], name
    assert options["location_dtype"] == want["location_dtype"]
    rebuilt = SatCLIPLightningModule(**{**{k: v for k, v in hp.items() if k in ORIGINAL_HPARAMS}, **options})
    assert {k: rebuilt.hparams[k] for k in ModelConfig.names()} == {
        **want, "image_resolution": cfg.patch_px}


def test_unknown_options_are_refused_by_name():
    with pytest.raises(TypeError, match="capacityy"):
        SatCLIP(capacityy=3)
    with pytest.raises(TypeError, match="capacityy"):
        SatCLIPLightningModule(capacityy=3)
    with pytest.raises(ValueError, match="location_dtype"):
        ModelConfig(location_dtype="float16")


def test_a_model_config_outside_training_uses_the_released_crop():
    assert dataclasses.replace(ModelConfig(), vision_layers="12").image_resolution is None
    assert DEFAULT_IMAGE_RESOLUTION == 224

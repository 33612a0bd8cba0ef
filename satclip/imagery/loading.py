"""``load_model``: the whole SatCLIP model (image encoder, location encoder, temperature) from an
original SatCLIP Lightning checkpoint or one written by ``satclip train``, offline.

The image encoder is built from the checkpoint's ``hyper_parameters`` (``vision_layers``,
``in_channels``, ``embed_dim``, ``image_resolution``, ``vision_width``, ``vision_patch_size``)
and filled with its ``model.visual.*`` tensors; nothing is downloaded (the original's
``get_satclip(..., return_all=True)`` fetches the MoCo backbone weights from the internet
before overwriting them with the checkpoint's, microsoft/satclip#14). For ``moco_resnet18``,
``moco_resnet50`` and ``moco_vit16`` the encoder is ``timm.create_model(arch, in_chans=13,
num_classes=embed_dim)`` holding the checkpoint's weights, in eval mode: the original's module.

Images, as the original was trained on them (S2-100K): ``[B, 13, H, W]`` float, the 12
Sentinel-2 L2A bands' digital numbers / 10000 in the order B01 B02 B03 B04 B05 B06 B07 B08
B8A B09 B11 B12 with a zero band inserted at index 10 (where the MoCo backbones expect B10);
``satclip.model.bands.s2_to_13_bands`` does this for ``[12, H, W]`` uint16 arrays. The
released models saw 224 x 224 crops of 256 x 256 patches (10 m pixels).
"""

from __future__ import annotations

import torch

from pathlib import Path

from ..checkpoint import encoder_from_lightning, is_safetensors, read_lightning, resolve_source
from ..model import ModelConfig, SatCLIP

_DTYPES = {None: None, "float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32,
           torch.float64: torch.float64}


# The bundled model's image side: ``visual.*`` stored in float16 (2.9 MB instead of 5.7) and
# ``logit_scale``, with the run's hyper_parameters as JSON metadata; its location encoder is the
# bundled location export (``satclip.default_model()``), stored once.
BUNDLED_IMAGE_SIDE = "satclip-bluemarble-l10-visual.safetensors"


def bundled_checkpoint() -> dict:
    """The bundled demo model as a checkpoint dict (original layout: ``state_dict`` with
    ``model.visual.*``, ``model.location.nnet.*``, ``model.logit_scale``; ``hyper_parameters``),
    assembled from its two files in ``satclip/data`` (see ``DEFAULT_MODEL.md``)."""
    import json
    from importlib import resources

    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..checkpoint import DEFAULT_MODEL

    data = resources.files("satclip.data")
    with resources.as_file(data.joinpath(BUNDLED_IMAGE_SIDE)) as visual, \
            resources.as_file(data.joinpath(DEFAULT_MODEL)) as location:
        for f in (visual, location):
            if not Path(f).is_file():
                raise FileNotFoundError(f"the bundled model file {Path(f).name} is missing from this installation")
        with safe_open(str(visual), framework="pt") as f:
            hp = json.loads(f.metadata()["hyper_parameters"])
        image = load_file(str(visual))
        state = {f"model.location.{k}": v for k, v in load_file(str(location)).items()}
    state.update({f"model.{k}": (v.float() if v.is_floating_point() else v) for k, v in image.items()})
    state["model.logit_scale"] = state["model.logit_scale"].reshape(())
    return {"state_dict": state, "hyper_parameters": hp}


def load_model(source=None, *, device=None, dtype=None, weights_only: bool = True) -> SatCLIP:
    """The whole model in eval mode, with ``encode_image(images)``, ``encode_location(lonlat)``
    (both ``[B, embed_dim]``, not normalised) and the learned ``logit_scale``.

    Args:
        source: a SatCLIP Lightning ``.ckpt`` (original or this package's) or a Hugging Face repo
            id (needs ``huggingface_hub``; only then is anything downloaded). ``None``: the
            bundled demo model (Blue Marble, RGB, see ``satclip/data/DEFAULT_MODEL.md``).
        device: where to put the model (default CPU).
        dtype: ``None`` (default): image encoder float32, location encoder float64 (the
            original's); ``torch.float32`` or ``torch.float64``: both.
        weights_only: passed to ``torch.load``; keep True unless you trust the file.

    Raises:
        ValueError: a location-only file (a ``.safetensors`` export or a reduced checkpoint: use
            ``satclip.load``), an unknown ``vision_layers``, or weights that do not fit.
    """
    if dtype not in _DTYPES:
        raise TypeError(f"dtype must be None, torch.float32 or torch.float64, got {dtype}")
    dtype = _DTYPES[dtype]
    if source is None:
        path, ckpt = Path("the bundled model"), bundled_checkpoint()
    else:
        path = resolve_source(source)
        if is_safetensors(path):
            raise ValueError(f"{path}: a location-only export (no image encoder); load it with satclip.load, or "
                             "pass the training run's checkpoints/last.ckpt")
        ckpt = read_lightning(path, weights_only)
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    visual = {k: v for k, v in state.items() if k.startswith("visual.")}
    if not visual:
        raise ValueError(f"{path}: no image encoder in this checkpoint (no model.visual.* tensors; it was reduced to "
                         "the location encoder); satclip.load reads its location encoder")
    hp = dict(ckpt.get("hyper_parameters") or {})
    location = encoder_from_lightning(ckpt, path, None, dtype or torch.float64)
    # the checkpoint's own values; what it lacks (an original checkpoint has no location_dtype) from
    # the location encoder it holds, the rest the ModelConfig defaults
    values = {k: v for k, v in hp.items() if v is not None}
    values.update(location.config())
    values.update(vision_layers=str(values.get("vision_layers", "moco_resnet18")), freeze_backbone=False,
                  visual_weights=None, location_dtype=str(dtype or torch.float64).removeprefix("torch."))
    in_channels = int(values.get("in_channels") or 13)
    try:
        config = ModelConfig.from_values(values)
        vision_layers = config.visual_layers()
        model = SatCLIP(config, pretrained_required=False)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    model.location = location  # the checkpoint loader's encoder: its checks, its weights
    model.nnet = location.nnet
    try:
        model.visual.load_state_dict({k[len("visual."):]: v for k, v in visual.items()}, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the image encoder's weights do not fit vision_layers={vision_layers!r}, "
                         f"in_channels={in_channels}: {str(exc).splitlines()[0]} ...") from None
    if "logit_scale" in state:
        model.logit_scale.data.copy_(state["logit_scale"].reshape(()))
    if dtype is not None:
        model.visual.to(dtype)
        model.logit_scale.data = model.logit_scale.data.to(dtype)
    return model.to(device or "cpu").eval()


def reduce_checkpoint(source, out, *, overwrite: bool = False) -> Path:
    """Writes the inference part of a full checkpoint to ``out``: the model's tensors
    (``state_dict`` entries ``model.*``), ``hyper_parameters`` and this package's options, without
    optimizer state (a third of a training checkpoint's size). ``load_model`` and ``satclip.load``
    read it like the original."""
    import torch

    src = resolve_source(source)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    ckpt = read_lightning(src, weights_only=False)
    keep = {"state_dict": {k: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")},
            "hyper_parameters": dict(ckpt.get("hyper_parameters") or {})}
    for key in ("satclip", "epoch", "global_step", "pytorch-lightning_version"):
        if key in ckpt:
            keep[key] = ckpt[key]
    tmp = out.with_name("." + out.name + ".tmp")
    torch.save(keep, tmp)
    tmp.replace(out)
    return out

"""Loading SatCLIP checkpoints and the project's own location-only export.

Accepted sources for :func:`load`:

* an original SatCLIP Lightning ``.ckpt`` (full: image backbone + optimizer state, or reduced
  to the location encoder): ``state_dict`` keys ``model.location.nnet.layers.{i}.weight|bias``
  and ``model.location.nnet.last_layer.weight|bias`` (``location.``/bare ``nnet.`` prefixes are
  accepted too), ``hyper_parameters`` with ``le_type``, ``pe_type``, ``legendre_polys``,
  ``harmonics_calculation``, ``capacity``, ``num_hidden_layers``, ``embed_dim``;
* the export written by :func:`save`: a ``.safetensors`` file holding the ``nnet.*`` tensors
  with the configuration as JSON in its metadata (no pickle, a few MB);
* a Hugging Face repo id such as ``microsoft/SatCLIP-ViT16-L40``, only when
  ``huggingface_hub`` is installed; nothing is downloaded unless such an id is given;
* torchgeo's ``SatCLIP`` module or its state dict (:func:`from_torchgeo`); :func:`to_torchgeo`
  goes the other way.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .nn import ComposedLocationEncoder, LocationEncoder
from .nn.composed_encoder import HARMONICS, LE_TYPES
from .nn.networks import NETWORKS

EXPORT_FORMAT = "satclip-location-encoder"
EXPORT_VERSION = 1
_PREFIXES = ("model.location.", "location.", "")


def _resolve_dtype(dtype) -> torch.dtype:
    if dtype is None:
        return torch.float64  # the original runs in float64
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "float64": torch.float64}.get(dtype, dtype)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype


def _location_state(state: dict, source: str) -> dict:
    for prefix in _PREFIXES:
        if any(k.startswith(prefix + "nnet.") for k in state):
            n = len(prefix)
            return {k[n:]: v for k, v in state.items() if k.startswith(prefix + "nnet.")}
    raise ValueError(f"{source}: no location-encoder weights found (looked for keys starting with "
                     f"{[p + 'nnet.' for p in _PREFIXES]})")


def _config_from_hparams(hp: dict, source: str) -> dict:
    le, pe = hp.get("le_type", "sphericalharmonics"), hp.get("pe_type", "siren")
    if le not in LE_TYPES:
        extra = " ('discretized' is a harmonics_calculation of le_type 'sphericalharmonics')" if le == "discretized" else ""
        raise ValueError(f"{source}: unknown le_type {le!r}; expected one of {LE_TYPES}{extra}")
    if pe not in NETWORKS:
        raise ValueError(f"{source}: unknown pe_type {pe!r}; expected one of {NETWORKS}")
    harm = hp.get("harmonics_calculation", "analytic")
    if le == "sphericalharmonics" and harm not in HARMONICS:
        raise ValueError(f"{source}: unsupported harmonics_calculation {harm!r}; expected one of {HARMONICS}")
    cfg = {"le_type": le, "pe_type": pe, "harmonics_calculation": harm}
    for key in ("legendre_polys", "capacity", "num_hidden_layers", "embed_dim", "frequency_num"):
        if key in hp and hp[key] is not None:
            cfg[key] = int(hp[key])
    for key in ("min_radius", "max_radius"):
        if key in hp and hp[key] is not None:
            cfg[key] = float(hp[key])
    return cfg


def _build_composed(cfg: dict, state: dict, source: str, device, dtype) -> ComposedLocationEncoder:
    """Any pair but spherical harmonics + SIREN: built from the hyper-parameters (the original
    writes them all), then the tensors loaded with strict key matching."""
    kw = {k: v for k, v in cfg.items() if k not in ("le_type", "pe_type")}
    try:
        enc = ComposedLocationEncoder(cfg["le_type"], cfg["pe_type"], **kw).to(dtype)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    first = next((v for k, v in state.items() if k.endswith("weight") and v.dim() == 2
                  and k in ("nnet.weight", "nnet.layers.0.weight", "nnet.features.0.weight", "nnet.feats.0.weight")), None)
    if first is not None and first.shape[1] != enc.posenc.embedding_dim:
        raise ValueError(f"{source}: the network takes {first.shape[1]} inputs but {cfg['le_type']} gives "
                         f"{enc.posenc.embedding_dim} (check frequency_num / legendre_polys)")
    try:
        enc.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{source}: weights do not match {enc.config()}: {exc}") from None
    return enc.to(device=device or "cpu", dtype=dtype).eval()


def fused_pair(cfg: dict) -> bool:
    """True for the configurations :class:`LocationEncoder` (the compiled kernels) runs: spherical
    harmonics evaluated per point + SIREN; every other one is a :class:`ComposedLocationEncoder`."""
    return ((cfg.get("le_type", "sphericalharmonics"), cfg.get("pe_type", "siren")) == ("sphericalharmonics", "siren")
            and cfg.get("harmonics_calculation", "analytic") != "discretized")


def _build(cfg: dict, state: dict, source: str, device, dtype):
    """Checks the hyper-parameters against the tensors, then builds the encoder."""
    if not fused_pair(cfg):
        return _build_composed(cfg, state, source, device, dtype)
    n_layers = 0
    while f"nnet.layers.{n_layers}.weight" in state:
        n_layers += 1
    try:
        w0 = state["nnet.layers.0.weight"]
        wl = state["nnet.last_layer.weight"]
    except KeyError as exc:
        raise ValueError(f"{source}: missing tensor {exc.args[0]}") from None
    hidden, in_dim = w0.shape
    L = round(in_dim ** 0.5)
    if L * L != in_dim:
        raise ValueError(f"{source}: first layer has {in_dim} inputs, not a square number of SH features")
    derived = {"legendre_polys": L, "capacity": hidden, "num_hidden_layers": n_layers, "embed_dim": wl.shape[0]}
    for key, value in derived.items():
        if key in cfg and cfg[key] != value:
            raise ValueError(f"{source}: hyper_parameters say {key}={cfg[key]} but the weights imply {key}={value}")
    # Convert the module to the target dtype *before* copying the weights in: loading float64
    # weights into float32 parameters would round them (1e-8) even if converted back later.
    enc = LocationEncoder(L, hidden, n_layers, wl.shape[0], harmonics=cfg["harmonics_calculation"]).to(dtype)
    try:
        enc.load_state_dict({"nnet." + k[len("nnet."):]: v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{source}: weights do not match the architecture {derived}: {exc}") from None
    return enc.to(device=device or "cpu", dtype=dtype).eval()


def _load_lightning(path: Path, device, dtype, weights_only: bool) -> LocationEncoder:
    return encoder_from_lightning(read_lightning(path, weights_only), path, device, dtype)


def read_lightning(path: Path, weights_only: bool) -> dict:
    """The checkpoint dict of a SatCLIP Lightning ``.ckpt`` (refused with the reason otherwise)."""
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (PK..); very old files are a bare pickle (protocol byte 0x80)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise ValueError(f"{path}: not a SatCLIP checkpoint (neither a torch checkpoint nor safetensors)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # torch.load raises many types on damaged files (IndexError, EOFError, ...)
        if weights_only and "weights_only" in str(exc):
            raise ValueError(f"{path}: a torch checkpoint holding Python objects that safe loading refuses "
                             f"({str(exc).splitlines()[-1][:200]}); if you trust the file, load it in Python with "
                             "satclip.load(path, weights_only=False)") from None
        raise ValueError(f"{path}: a damaged torch checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a SatCLIP Lightning checkpoint (no 'state_dict' entry)")
    return ckpt


def encoder_from_lightning(ckpt: dict, path: Path, device, dtype) -> LocationEncoder:
    """The location encoder of a Lightning checkpoint dict (``read_lightning``), built from its
    ``hyper_parameters`` and loaded strictly from the location encoder's keys of its ``state_dict``."""
    hp = ckpt.get("hyper_parameters") or {}
    if not isinstance(hp, dict):
        hp = dict(hp)
    cfg = _config_from_hparams(hp, str(path))
    return _build(cfg, _location_state(ckpt["state_dict"], str(path)), str(path), device, dtype)


def _load_export(path: Path, device, dtype) -> LocationEncoder:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: a safetensors file, but not a satclip export (metadata format={meta.get('format')!r})")
    cfg = json.loads(meta["config"])
    return _build(_config_from_hparams(cfg, str(path)), load_file(str(path)), str(path), device, dtype)


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` starts as a safetensors file does (an 8-byte header length, then JSON)."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < 100_000_000 and head[8:9] == b"{"


def _hf_download(repo_id: str) -> Path:
    try:
        import huggingface_hub
    except ImportError:
        raise FileNotFoundError(f"checkpoint not found: {repo_id!r} is no local file, and reading it as a Hugging "
                                "Face repo id needs `pip install huggingface_hub`") from None
    try:
        files = [f for f in huggingface_hub.list_repo_files(repo_id) if f.endswith((".ckpt", ".safetensors"))]
        if not files:
            raise ValueError(f"Hugging Face repo {repo_id!r} has no .ckpt or .safetensors file")
        return Path(huggingface_hub.hf_hub_download(repo_id, sorted(files)[0]))
    except ValueError:
        raise
    except Exception as exc:  # offline, DNS, proxy, a repo that does not exist or is private
        raise FileNotFoundError(
            f"checkpoint not found: {repo_id!r} is no local file, and fetching it as a Hugging Face repo id failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); that needs a network connection and an "
            "existing repo (e.g. microsoft/SatCLIP-ViT16-L40), or give the path of a downloaded checkpoint file") from None


def _looks_like_hub_id(s: str) -> bool:
    """``owner/name`` with neither part existing locally and no file suffix: a Hugging Face repo
    id. A string whose folder exists here (``runs/l40`` beside a ``runs/`` folder) is a path."""
    parts = s.split("/")
    return (len(parts) == 2 and all(parts) and not s.startswith((".", "/", "~"))
            and not s.endswith((".ckpt", ".safetensors", ".pt", ".pth")) and not Path(parts[0]).exists())


def resolve_source(source) -> Path:
    """A checkpoint file from a path or a Hugging Face repo id (downloaded only then)."""
    path = Path(os.fspath(source))
    if not path.exists():
        s = str(source)
        if _looks_like_hub_id(s):
            path = _hf_download(s)
        else:
            raise FileNotFoundError(f"checkpoint not found: {source} (no such file)")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; pass the checkpoint file inside it")
    return path


def load(source, *, device=None, dtype=None, weights_only: bool = True):
    """Loads a location encoder in eval mode (default dtype float64, as the original): a
    :class:`satclip.nn.LocationEncoder` for spherical harmonics + SIREN (the released models,
    compiled fused kernels), a :class:`satclip.nn.ComposedLocationEncoder` for every other
    ``le_type`` / ``pe_type`` pair of the original code.

    Args:
        source: path to a SatCLIP Lightning ``.ckpt``, a satclip ``.safetensors`` export, a
            Hugging Face repo id (needs ``huggingface_hub``; downloads only that repo), or
            torchgeo's ``SatCLIP`` module or its state dict (:func:`from_torchgeo`).
        device: target device (default CPU).
        dtype: ``torch.float64`` (default) or ``torch.float32``.
        weights_only: passed to ``torch.load``; keep True unless you trust the file.

    Raises:
        ValueError: unreadable or non-SatCLIP file, unsupported ``le_type``/``pe_type``, or
            ``hyper_parameters`` that disagree with the weights.
    """
    dtype = _resolve_dtype(dtype)
    if isinstance(source, torch.nn.Module) or isinstance(source, Mapping):
        return from_torchgeo(source, device=device, dtype=dtype)
    path = resolve_source(source)
    enc = _load_export(path, device, dtype) if is_safetensors(path) else _load_lightning(path, device, dtype, weights_only)
    enc.origin = str(source)  # where the weights came from: an output's metadata names it
    return enc


DEFAULT_MODEL = "satclip-bluemarble-l10.safetensors"


def default_model(*, device=None, dtype=torch.float32) -> LocationEncoder:
    """The small model bundled with the package (location-only export, L = 10, hidden 512,
    output 256), trained by this package on the Blue Marble demo imagery; how it was made and
    how it scores are in ``satclip/data/DEFAULT_MODEL.md``. Used by ``satclip embed`` when no
    ``--checkpoint`` is given. It is a demonstration model, not one of the released SatCLIP
    models (those were trained on Sentinel-2 imagery: pass their checkpoints to :func:`load`)."""
    from importlib import resources

    with resources.as_file(resources.files("satclip.data").joinpath(DEFAULT_MODEL)) as path:
        if not path.is_file():
            raise FileNotFoundError(f"the bundled default model {DEFAULT_MODEL} is missing from this installation")
        enc = load(path, device=device, dtype=dtype)
    enc.origin = "bundled"
    return enc


def save(encoder: LocationEncoder, path, *, overwrite: bool = False) -> Path:
    """Writes the location-only export (``.safetensors`` with the config in its metadata).

    The file is written to a temporary name and renamed, so a crash never leaves a
    half-written export; an existing file is only replaced with ``overwrite=True``.
    """
    from safetensors.torch import save_file

    if not isinstance(encoder, (LocationEncoder, ComposedLocationEncoder)):
        raise TypeError(f"expected a satclip.nn.LocationEncoder or ComposedLocationEncoder, got {type(encoder).__name__}")
    path = Path(os.fspath(path))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    # clone: the original's MLP registers one hidden layer several times (shared tensors), which
    # safetensors refuses to store as such; each key gets its own copy, loaded back into the one layer
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in encoder.state_dict().items()}
    meta = {"format": EXPORT_FORMAT, "version": str(EXPORT_VERSION), "config": json.dumps(encoder.config())}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


TORCHGEO_LATITUDE_LIMIT = 89.95  # torchgeo's SatCLIP clamps latitudes to this before the harmonics


def from_torchgeo(module_or_state, *, device=None, dtype=None, match_clamp: bool = True) -> LocationEncoder:
    """A :class:`LocationEncoder` holding torchgeo's ``SatCLIP`` weights (its module, or the state
    dict of one: keys ``nnet.layers.{i}.weight|bias``, ``nnet.last_layer.weight|bias``; a
    ``posenc.`` or ``model.location.`` prefix is accepted), in eval mode. torchgeo's harmonics are
    the original's ``"analytic"`` ones (``Y_l0`` times pi), computed by a recurrence: the same
    numbers. The one difference is that torchgeo clamps latitudes to +-89.95 degrees first;
    ``match_clamp=True`` (default) does too (``EncodeOptions.latitude_limit``), so the outputs
    match everywhere; ``False`` gives the original's values at the poles.
    """
    state = module_or_state.state_dict() if isinstance(module_or_state, torch.nn.Module) else dict(module_or_state)
    for prefix in ("model.location.", "location."):
        if any(k.startswith(prefix + "nnet.") for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    nnet = {k: v for k, v in state.items() if k.startswith("nnet.")}
    layers = sorted({int(k.split(".")[2]) for k in nnet if k.startswith("nnet.layers.") and k.endswith(".weight")})
    if not layers or "nnet.last_layer.weight" not in nnet or layers != list(range(len(layers))):
        raise ValueError("not a torchgeo SatCLIP location encoder: expected the keys nnet.layers.{i}.weight / "
                         f"nnet.last_layer.weight, got {sorted(state)[:6]}{' ...' if len(state) > 6 else ''}")
    w0 = nnet["nnet.layers.0.weight"]
    L = int(round(math.sqrt(w0.shape[1])))
    if L * L != w0.shape[1]:
        raise ValueError(f"the first layer takes {w0.shape[1]} inputs, not L*L spherical harmonics")
    enc = LocationEncoder(L, w0.shape[0], len(layers), nnet["nnet.last_layer.weight"].shape[0], harmonics="analytic")
    missing, unexpected = enc.load_state_dict(nnet, strict=False)
    if missing or unexpected:
        raise ValueError(f"torchgeo weights do not fit a SatCLIP encoder: missing {missing}, unexpected {unexpected}")
    if match_clamp:
        enc.options = enc.options.replace(latitude_limit=TORCHGEO_LATITUDE_LIMIT)
    enc.origin = "torchgeo SatCLIP module" if isinstance(module_or_state, torch.nn.Module) else "torchgeo state dict"
    return enc.to(device=device or "cpu", dtype=_resolve_dtype(dtype) if dtype is not None else w0.dtype).eval()


def to_torchgeo(encoder):
    """torchgeo's ``SatCLIP`` module (``torchgeo.models.SatCLIP``) holding ``encoder``'s weights, in
    its dtype and eval mode: a torchgeo pipeline takes it as it is."""
    try:
        from torchgeo.models import SatCLIP
    except ImportError:
        raise ImportError("torchgeo is not installed (pip install torchgeo; it needs Python >= 3.12)") from None
    if not isinstance(encoder, LocationEncoder) or encoder.harmonics != "analytic":
        raise ValueError("torchgeo's SatCLIP computes the released models' 'analytic' harmonics with a SIREN: "
                         f"this encoder is {type(encoder).__name__}"
                         + (f" with {encoder.harmonics!r} harmonics" if isinstance(encoder, LocationEncoder) else ""))
    cfg = encoder.config()
    module = SatCLIP(legendre_polys=cfg["legendre_polys"], capacity=cfg["capacity"], embed_dim=cfg["embed_dim"],
                     num_hidden_layers=cfg["num_hidden_layers"])
    module.nnet.load_state_dict(encoder.nnet.state_dict())
    param = next(encoder.parameters())
    return module.to(device=param.device, dtype=param.dtype).eval()

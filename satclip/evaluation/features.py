"""The feature sets ``satclip evaluate`` compares: raw (lon, lat), the raw spherical-harmonic
features at the same L, a randomly initialised encoder (seed 0) of the same shape, and the
user's checkpoint when given. Each is a function ``lonlat [n, 2] float64 numpy -> [n, d]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import functional as F
from ..checkpoint import fused_pair
from ..nn import ComposedLocationEncoder, LocationEncoder


def _as_features(module):
    """A module as a feature function: lonlat [n, 2] float64 numpy -> [n, d] numpy, no gradient."""
    def f(ll):
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(ll))).numpy()
    return f


def _names(paths) -> list[str]:
    """Short, distinct names for checkpoint paths: the file name, with parent folders added
    where two files share it."""
    parts = [Path(str(p)).parts for p in paths]
    depth = [1] * len(parts)
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clash = [i for i, n in enumerate(names) if names.count(n) > 1 and depth[i] < len(parts[i])]
        if not clash:
            return names
        for i in clash:
            depth[i] += 1


def geoclip_features():
    """GeoCLIP's pretrained location encoder (Vivanco Cepeda et al., NeurIPS 2023; the ``geoclip``
    wheel ships its weights, MIT): (lat, lon) degrees, *lat first*, through the Equal Earth
    projection and random Fourier features at three scales (sigma 2^0, 2^4, 2^8) into three MLPs
    whose 512-d outputs are summed. Run offline, float32, no gradient."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its torch.jit.script deprecation notice
            from geoclip.model.location_encoder import LocationEncoder as GeoCLIPLocationEncoder
    except ImportError as exc:
        raise ImportError(f"the GeoCLIP baseline needs the geoclip package (pip install geoclip): {exc}") from None
    model = GeoCLIPLocationEncoder().eval()  # weights from the installed wheel, nothing downloaded

    def f(ll):
        with torch.no_grad():
            latlon = torch.from_numpy(ll[:, ::-1].copy()).float()  # GeoCLIP takes lat first
            return torch.cat([model(latlon[i:i + 8192]) for i in range(0, len(latlon), 8192)]).double().numpy() \
                if len(latlon) else np.zeros((0, 512))
    return f


def encoding_baselines(names) -> dict:
    """For each of the original's other positional encodings (``wrap``, ``theory``, ``grid``,
    ``sphere*``, ...): its raw features and a randomly initialised encoder of it with a SIREN
    (seed 0; the original's defaults: 16 frequencies between radii 1 and 260, hidden 256, 2
    layers, 256 outputs)."""
    from ..nn.positional_encodings import FREQUENCY_ENCODINGS, PLAIN_ENCODINGS, positional_encoding
    known = PLAIN_ENCODINGS + FREQUENCY_ENCODINGS
    sets = {}
    for name in names:
        if name not in known:
            raise ValueError(f"unknown positional encoding {name!r}; expected among {list(known)}")
        kw = dict(frequency_num=16, min_radius=1.0, max_radius=260.0)
        raw = positional_encoding(name, **kw)
        torch.manual_seed(0)
        rand = ComposedLocationEncoder(name, "siren", capacity=256, num_hidden_layers=2, embed_dim=256, **kw)
        sets[f"raw {name}"] = _as_features(raw)
        sets[f"random-init {name}+siren"] = _as_features(rand.double().eval())
    return sets


def feature_sets(checkpoint=None, legendre_polys: int = 10, *, default_model: bool = False,
                 geoclip: bool = False, encodings=()) -> dict:
    """name -> function(lonlat [n, 2] float64 numpy) -> features [n, d] numpy. ``checkpoint``: one
    path or a list of them (evaluated side by side; the baselines follow the first one's L and
    architecture). With ``default_model`` (and no checkpoint) the bundled default model is the
    encoder evaluated."""
    encoders = {}
    paths = [] if checkpoint is None else ([checkpoint] if isinstance(checkpoint, (str, Path)) else list(checkpoint))
    if paths:
        from ..checkpoint import load
        for path, short in zip(paths, _names(paths)):
            encoders[f"checkpoint {short}"] = load(path, dtype=torch.float64)
    elif default_model:
        from ..checkpoint import default_model as bundled
        encoders["bundled default model"] = bundled(dtype=torch.float64)
    enc = next(iter(encoders.values()), None)
    cfg = enc.config() if enc is not None else None
    if cfg is not None:
        legendre_polys = cfg["legendre_polys"]
    L = legendre_polys
    torch.manual_seed(0)
    if cfg is None:
        rand = LocationEncoder(L, 512, 2, 256)
    elif fused_pair(cfg):
        rand = LocationEncoder(L, cfg["capacity"], cfg["num_hidden_layers"], cfg["embed_dim"])
    else:  # the same architecture, untrained
        rand = ComposedLocationEncoder(**cfg)
    rand = rand.double().eval()

    sets = {"lon/lat": lambda ll: ll.copy(),
            f"SH L={L}": lambda ll: F.spherical_harmonics(torch.from_numpy(ll), L).numpy(),
            (f"random-init encoder L={L}" if cfg is None or cfg["le_type"] == "sphericalharmonics"
             else f"random-init {cfg['le_type']}+{cfg['pe_type']}"): _as_features(rand)}
    sets.update(encoding_baselines(encodings))
    for name, e in encoders.items():
        sets[name] = _as_features(e)
    if geoclip:
        sets["GeoCLIP (pretrained)"] = geoclip_features()
    return sets

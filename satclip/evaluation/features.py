"""The feature sets ``satclip evaluate`` compares: raw (lon, lat), the raw spherical-harmonic
features at the same L, a randomly initialised encoder (seed 0) of the same shape, and the
user's checkpoint when given. Each is a function ``lonlat [n, 2] float64 numpy -> [n, d]``."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import functional as F
from ..checkpoint import fused_pair
from ..nn import ComposedLocationEncoder, LocationEncoder


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


def feature_sets(checkpoint=None, legendre_polys: int = 10, *, default_model: bool = False) -> dict:
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

    def run(model):
        def f(ll):
            with torch.no_grad():
                return model(torch.from_numpy(ll)).numpy()
        return f

    sets = {"lon/lat": lambda ll: ll.copy(),
            f"SH L={L}": lambda ll: F.spherical_harmonics(torch.from_numpy(ll), L).numpy(),
            (f"random-init encoder L={L}" if cfg is None or cfg["le_type"] == "sphericalharmonics"
             else f"random-init {cfg['le_type']}+{cfg['pe_type']}"): run(rand)}
    for name, e in encoders.items():
        sets[name] = run(e)
    return sets

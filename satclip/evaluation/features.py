"""The feature sets ``satclip evaluate`` compares: raw (lon, lat), the raw spherical-harmonic
features at the same L, a randomly initialised encoder (seed 0) of the same shape, and the
user's checkpoint when given. Each is a function ``lonlat [n, 2] float64 numpy -> [n, d]``."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import functional as F
from ..nn import LocationEncoder


def feature_sets(checkpoint=None, legendre_polys: int = 10, *, default_model: bool = False) -> dict:
    """name -> function(lonlat [n, 2] float64 numpy) -> features [n, d] numpy. With
    ``default_model`` (and no checkpoint) the bundled default model is the encoder evaluated."""
    enc, name = None, None
    if checkpoint is not None:
        from ..checkpoint import load
        enc = load(checkpoint, dtype=torch.float64)
        name = f"checkpoint {Path(str(checkpoint)).name}"
    elif default_model:
        from ..checkpoint import default_model as bundled
        enc = bundled(dtype=torch.float64)
        name = "bundled default model"
    if enc is not None:
        legendre_polys = enc.legendre_polys
    L = legendre_polys
    torch.manual_seed(0)
    rand = (LocationEncoder(L, enc.nnet.dim_hidden, enc.nnet.num_layers, enc.nnet.dim_out) if enc is not None
            else LocationEncoder(L, 512, 2, 256)).double().eval()

    def run(model):
        def f(ll):
            with torch.no_grad():
                return model(torch.from_numpy(ll)).numpy()
        return f

    sets = {"lon/lat": lambda ll: ll.copy(),
            f"SH L={L}": lambda ll: F.spherical_harmonics(torch.from_numpy(ll), L).numpy(),
            f"random-init encoder L={L}": run(rand)}
    if enc is not None:
        sets[name] = run(enc)
    return sets

"""satclip: fast, faithful SatCLIP location encoders.

``import satclip; enc = satclip.load("satclip-vit16-l10.ckpt"); emb = enc(lonlat)`` with
``lonlat`` a ``[N, 2]`` tensor of (lon, lat) in degrees, lon first. The whole model (image side
too): ``model = satclip.load_model(ckpt)``; ``satclip.locate(model, images, gallery, k)``.

Public API only; the layers below, each a subpackage (imports point down this list):
``cli`` -> ``imagery`` -> ``embedding`` / ``evaluation`` / ``training`` -> ``checkpoint`` -> ``nn`` ->
``functional`` -> ``ops`` (schemas, fallbacks, the compiled ``_C.so``).
"""

import os as _os
import sys as _sys

# The `satclip` command's streaming embedder shares the cores between the encoder's OpenMP
# threads and its reader/writer threads; OpenMP threads that spin while waiting (libgomp's
# default) take CPU from the writer. Two A/B runs on 2 cores (benchmarks/embed_wait_policy.py,
# results/embed-wait-policy.md): grid -> Parquet end to end +14% and +8% with passive waiting,
# Zarr +9% and -2% (noise is about 10-20% there). Only for the command, only before torch loads
# (libgomp reads it then), and never over a value the user set.
if _os.path.basename(_sys.argv[0] if _sys.argv else "") == "satclip" and "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._version import __version__
from .ops import backend_info, extension_loaded  # first: defines the op schemas, loads _C.so
from . import functional, nn
from .checkpoint import default_model, load, save
from .embedding import embed
from .nn import LocationEncoder

__all__ = ["Gallery", "LocationEncoder", "__version__", "backend_info", "default_model", "embed",
           "extension_loaded", "functional", "load", "load_model", "locate", "nn", "save"]

_IMAGERY = ("Gallery", "load_model", "locate")  # the image side: timm / rasterio, imported when first used


def __getattr__(name):
    if name in _IMAGERY:
        from . import imagery
        return getattr(imagery, name)
    raise AttributeError(f"module 'satclip' has no attribute {name!r}")

"""satclip: fast, faithful SatCLIP location encoders.

``import satclip; enc = satclip.load("satclip-vit16-l10.ckpt"); emb = enc(lonlat)`` with
``lonlat`` a ``[N, 2]`` tensor of (lon, lat) in degrees, lon first.
"""

from . import _ops  # noqa: F401  defines the op schemas first
from ._extension import backend_info, extension_loaded
from . import functional, nn
from ._checkpoint import load, save
from .nn import LocationEncoder

__version__ = "0.1.0"
__all__ = ["LocationEncoder", "backend_info", "extension_loaded", "functional", "load", "nn", "save"]

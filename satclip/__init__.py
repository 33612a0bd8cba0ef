"""satclip: fast, faithful SatCLIP location encoders.

``import satclip; enc = satclip.load("satclip-vit16-l10.ckpt"); emb = enc(lonlat)`` with
``lonlat`` a ``[N, 2]`` tensor of (lon, lat) in degrees, lon first.
"""

from ._version import __version__
from . import _ops  # noqa: F401  defines the op schemas first
from ._extension import backend_info, extension_loaded
from . import functional, nn
from ._checkpoint import default_model, load, save
from ._embed import embed
from .nn import LocationEncoder

__all__ = ["LocationEncoder", "__version__", "backend_info", "default_model", "embed", "extension_loaded",
           "functional", "load", "nn", "save"]

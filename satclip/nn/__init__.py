"""Location encoders as ``torch.nn`` modules, ``state_dict``-compatible with the original
SatCLIP code: positional encodings (:mod:`.spherical_harmonics`), networks (:mod:`.siren`) and
the :class:`LocationEncoder` that joins them (:mod:`.location_encoder`); the original's other
positional encodings (:mod:`.positional_encodings`) and networks (:mod:`.networks`), joined for
every other pair by :class:`ComposedLocationEncoder` (:mod:`.composed_encoder`).

May import :mod:`satclip.functional` and :mod:`satclip.ops`, nothing above them.
"""

from .composed_encoder import ComposedLocationEncoder
from .location_encoder import LocationEncoder
from .networks import network
from .positional_encodings import positional_encoding
from .siren import Siren, SirenNet
from .spherical_harmonics import SphericalHarmonics

__all__ = ["ComposedLocationEncoder", "LocationEncoder", "Siren", "SirenNet", "SphericalHarmonics", "network", "positional_encoding"]

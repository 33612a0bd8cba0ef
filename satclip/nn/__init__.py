"""Location encoders as ``torch.nn`` modules, ``state_dict``-compatible with the original
SatCLIP code: positional encodings (:mod:`.spherical_harmonics`), networks (:mod:`.siren`) and
the :class:`LocationEncoder` that joins them (:mod:`.location_encoder`); the original's other
positional encodings (:mod:`.positional_encodings`, not yet joined to a network or a checkpoint).

May import :mod:`satclip.functional` and :mod:`satclip.ops`, nothing above them.
"""

from .location_encoder import LocationEncoder
from .positional_encodings import positional_encoding
from .siren import Siren, SirenNet
from .spherical_harmonics import SphericalHarmonics

__all__ = ["LocationEncoder", "Siren", "SirenNet", "SphericalHarmonics", "positional_encoding"]

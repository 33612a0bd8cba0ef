"""Location encoders as ``torch.nn`` modules, ``state_dict``-compatible with the original
SatCLIP code: positional encodings (:mod:`.spherical_harmonics`), networks (:mod:`.siren`) and
the :class:`LocationEncoder` that joins them (:mod:`.location_encoder`).

May import :mod:`satclip.functional` and :mod:`satclip.ops`, nothing above them.
"""

from .location_encoder import LocationEncoder
from .siren import Siren, SirenNet
from .spherical_harmonics import SphericalHarmonics

__all__ = ["LocationEncoder", "Siren", "SirenNet", "SphericalHarmonics"]

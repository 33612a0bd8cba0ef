"""``SphericalHarmonics``: the parameter-free positional encoding of the SatCLIP location
encoder, ``[N, 2]`` (lon, lat) degrees -> ``[N, L*L]`` features in a SatCLIP convention
(feature ``l*l + l + m``; see :mod:`satclip.functional`)."""

from __future__ import annotations

import torch
from torch import nn

from .. import functional as F


class SphericalHarmonics(nn.Module):
    """``[N, 2]`` (lon, lat) degrees -> ``[N, L*L]`` SH features in ``convention``."""

    def __init__(self, legendre_polys: int = 10, convention: str = "analytic"):
        super().__init__()
        F._check_degree(legendre_polys)
        if convention not in F.CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; expected one of {F.CONVENTIONS}")
        self.L = legendre_polys
        self.convention = convention
        self.embedding_dim = legendre_polys * legendre_polys

    def forward(self, lonlat: torch.Tensor) -> torch.Tensor:
        return F.spherical_harmonics(lonlat, self.L, convention=self.convention)

    def extra_repr(self) -> str:
        return f"legendre_polys={self.L}, convention={self.convention!r}"

"""``ComposedLocationEncoder``: a positional encoding (``le_type``) followed by a network
(``pe_type``), as the original's ``LocationEncoder(posenc, nnet)``, for every combination the
original builds; ``state_dict`` keys ``nnet.*`` exactly as the original's (the encodings have no
parameters). The released pair, spherical harmonics + SIREN, is :class:`LocationEncoder`, which
runs the compiled fused kernels; every other pair (and SH + SIREN with the ``"discretized"`` table
lookup) runs plain torch ops (the SIREN layers still use the ``siren_layer`` op).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import functional as F
from .networks import NETWORKS, network
from .positional_encodings import FREQUENCY_ENCODINGS, PLAIN_ENCODINGS, positional_encoding
from .discretized_harmonics import DiscretizedSphericalHarmonics
from .spherical_harmonics import SphericalHarmonics

LE_TYPES = ("sphericalharmonics",) + PLAIN_ENCODINGS + FREQUENCY_ENCODINGS
HARMONICS = ("analytic", "closed-form", "discretized")  # the original's harmonics_calculation values


class ComposedLocationEncoder(nn.Module):
    """``[N, 2]`` (lon, lat) degrees, lon first -> ``[N, embed_dim]``.

    Args (the original's hyper-parameter names): ``le_type`` and ``pe_type``; ``legendre_polys``
    and ``harmonics_calculation`` (spherical harmonics); ``frequency_num``, ``min_radius``,
    ``max_radius`` (the frequency encodings); ``capacity`` (hidden width), ``num_hidden_layers``,
    ``embed_dim`` (output width).
    """

    def __init__(self, le_type: str, pe_type: str, *, legendre_polys: int = 10,
                 harmonics_calculation: str = "analytic", frequency_num: int = 16, min_radius: float = 1.0,
                 max_radius: float = 360.0, capacity: int = 256, num_hidden_layers: int = 2, embed_dim: int = 256):
        super().__init__()
        if le_type not in LE_TYPES:
            raise ValueError(f"unknown le_type {le_type!r}; expected one of {LE_TYPES}")
        if pe_type not in NETWORKS:
            raise ValueError(f"unknown pe_type {pe_type!r}; expected one of {NETWORKS}")
        self.le_type, self.pe_type = le_type, pe_type
        self.hparams = {"legendre_polys": int(legendre_polys), "harmonics_calculation": harmonics_calculation,
                        "frequency_num": int(frequency_num), "min_radius": float(min_radius),
                        "max_radius": float(max_radius), "capacity": int(capacity),
                        "num_hidden_layers": int(num_hidden_layers), "embed_dim": int(embed_dim)}
        if le_type == "sphericalharmonics" and harmonics_calculation == "discretized":
            self.posenc = DiscretizedSphericalHarmonics(int(legendre_polys))  # the original's table lookup
        elif le_type == "sphericalharmonics":
            if harmonics_calculation not in HARMONICS:
                raise ValueError(f"unknown harmonics_calculation {harmonics_calculation!r}; expected one of {HARMONICS}")
            self.posenc = SphericalHarmonics(int(legendre_polys), harmonics_calculation)
        else:
            self.posenc = positional_encoding(le_type, frequency_num=frequency_num, min_radius=min_radius,
                                              max_radius=max_radius)
        self.nnet = network(pe_type, self.posenc.embedding_dim, int(embed_dim), int(capacity), int(num_hidden_layers))
        self.precision = "float32"  # the fused precision modes belong to LocationEncoder

    @property
    def dim_out(self) -> int:
        return self.hparams["embed_dim"]

    def config(self) -> dict:
        """Hyper-parameters, named as in SatCLIP's ``hyper_parameters``."""
        return {"le_type": self.le_type, "pe_type": self.pe_type, **self.hparams}

    def forward(self, lonlat: torch.Tensor) -> torch.Tensor:
        F.validate_lonlat(lonlat)
        dtype = next(self.parameters()).dtype
        return self.nnet(self.posenc(lonlat.to(dtype)))

    def extra_repr(self) -> str:
        return f"le_type={self.le_type!r}, pe_type={self.pe_type!r}"

"""nn.Modules of the SatCLIP location encoder, ``state_dict``-compatible with the original.

``LocationEncoder(lonlat [N, 2] degrees, lon first) -> [N, dim_out]`` =
``SphericalHarmonics`` (no parameters) -> ``SirenNet``: ``num_hidden_layers`` sine layers
(``sin(w0 * (W x + b))``, ``w0 = 30`` on the first, ``1`` after) and a linear last layer.
Keys: ``nnet.layers.{i}.weight|bias``, ``nnet.last_layer.weight|bias``; weights are
``[out, in]``.

In eval mode (or whenever no gradient is needed) the encoder runs the fused inference op
(``satclip::location_encoder_forward``) with the SH convention folded into the first layer's
weights, so the kernels only ever compute orthonormal SH. In training mode it runs the
differentiable ops (SH, SIREN layers with dropout masks) with autograd formulas.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import functional as F
from ._ops import ops


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


class Siren(nn.Module):
    """One SIREN layer, ``activation(w0 * dropout(W x + b))`` with sine activation by default.

    Initialisation as SatCLIP: first layer ``U(-1/d, 1/d)``, others ``U(-sqrt(c/d)/w0, +)``,
    biases alike (``d`` = input width). ``sine=False`` gives the linear last layer.
    """

    def __init__(self, dim_in: int, dim_out: int, w0: float = 1.0, c: float = 6.0, is_first: bool = False,
                 use_bias: bool = True, sine: bool = True, dropout: bool = False, p: float = 0.5):
        super().__init__()
        self.dim_in, self.dim_out, self.w0, self.is_first = dim_in, dim_out, float(w0), is_first
        self.sine, self.dropout, self.p = sine, dropout, p
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in))
        self.bias = nn.Parameter(torch.empty(dim_out)) if use_bias else None
        w_std = (1 / dim_in) if is_first else math.sqrt(c / dim_in) / self.w0
        with torch.no_grad():
            self.weight.uniform_(-w_std, w_std)
            if self.bias is not None:
                self.bias.uniform_(-w_std, w_std)

    def _bias(self) -> torch.Tensor:
        return self.bias if self.bias is not None else self.weight.new_zeros(self.dim_out)

    def dropout_mask(self, n: int) -> torch.Tensor | None:
        if not (self.dropout and self.training and self.p > 0):
            return None
        keep = 1.0 - self.p
        return torch.bernoulli(self.weight.new_full((n, self.dim_out), keep)) / keep

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weight if weight is None else weight
        if not self.sine:
            return torch.nn.functional.linear(x, w, self.bias)
        return F.siren_layer(x, w, self._bias(), self.w0, self.dropout_mask(x.shape[0]))

    def extra_repr(self) -> str:
        return f"dim_in={self.dim_in}, dim_out={self.dim_out}, w0={self.w0}, sine={self.sine}, dropout={self.dropout}"


class SirenNet(nn.Module):
    """``num_layers`` sine layers of width ``dim_hidden`` then a linear layer to ``dim_out``."""

    def __init__(self, dim_in: int, dim_hidden: int, dim_out: int, num_layers: int, w0: float = 1.0,
                 w0_initial: float = 30.0, use_bias: bool = True, dropout: bool = True):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.dim_in, self.dim_hidden, self.dim_out, self.num_layers = dim_in, dim_hidden, dim_out, num_layers
        self.w0, self.w0_initial = float(w0), float(w0_initial)
        self.layers = nn.ModuleList(
            Siren(dim_in if i == 0 else dim_hidden, dim_hidden, w0=w0_initial if i == 0 else w0,
                  is_first=i == 0, use_bias=use_bias, dropout=dropout)
            for i in range(num_layers))
        self.last_layer = Siren(dim_hidden, dim_out, w0=w0, use_bias=use_bias, sine=False)

    def forward(self, x: torch.Tensor, first_weight: torch.Tensor | None = None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, first_weight if i == 0 else None)
        return self.last_layer(x)


class LocationEncoder(nn.Module):
    """SatCLIP location encoder: ``[N, 2]`` (lon, lat) degrees, lon first -> ``[N, dim_out]``.

    Args:
        legendre_polys: ``L`` (10 or 40 in the released models); ``L*L`` SH features.
        dim_hidden: SIREN width (``capacity`` in SatCLIP checkpoints; 512 released).
        num_hidden_layers: number of sine layers (2 released).
        dim_out: embedding width (``embed_dim``; 256 released).
        harmonics: SH convention the weights were trained with (``"analytic"`` released).
        dropout: dropout (p = 0.5) before the sine of the hidden layers in training mode.
        fused: use the fused inference op when no gradient is needed.
        precision: GEMM operand precision of the fused inference path (float32 encoders):
            ``"float32"`` (exact, default), ``"tf32"`` or ``"bf16"`` (see
            :func:`satclip.functional.location_encoder`). Training always runs exact.

    Inputs in another float dtype than the parameters are cast to the parameters' dtype.
    """

    def __init__(self, legendre_polys: int = 10, dim_hidden: int = 512, num_hidden_layers: int = 2,
                 dim_out: int = 256, harmonics: str = "analytic", dropout: bool = True, fused: bool = True,
                 precision: str = "float32"):
        super().__init__()
        self.posenc = SphericalHarmonics(legendre_polys, harmonics)
        self.nnet = SirenNet(legendre_polys * legendre_polys, dim_hidden, dim_out, num_hidden_layers,
                             dropout=dropout)
        self.fused = fused
        if precision not in F.PRECISIONS:
            raise ValueError(f"precision must be one of {F.PRECISIONS}, got {precision!r}")
        self.precision = precision

    @property
    def legendre_polys(self) -> int:
        return self.posenc.L

    @property
    def harmonics(self) -> str:
        return self.posenc.convention

    def config(self) -> dict:
        """Hyper-parameters, named as in SatCLIP's ``hyper_parameters``."""
        return {"le_type": "sphericalharmonics", "pe_type": "siren", "legendre_polys": self.legendre_polys,
                "harmonics_calculation": self.harmonics, "capacity": self.nnet.dim_hidden,
                "num_hidden_layers": self.nnet.num_layers, "embed_dim": self.nnet.dim_out}

    def folded_first_weight(self) -> torch.Tensor:
        """First-layer weight with the SH convention factors folded in (orthonormal SH input)."""
        w = self.nnet.layers[0].weight
        f = F.convention_factors(self.legendre_polys, self.harmonics, dtype=w.dtype, device=w.device)
        return w * f

    def forward(self, lonlat: torch.Tensor) -> torch.Tensor:
        F.validate_lonlat(lonlat)
        w_first = self.folded_first_weight()
        lonlat = lonlat.to(w_first.dtype)
        needs_grad = torch.is_grad_enabled() and (lonlat.requires_grad or any(
            p.requires_grad for p in self.parameters()))
        if self.fused and not needs_grad and not self.training:
            layers = list(self.nnet.layers)
            weights = [w_first] + [l.weight for l in layers[1:]] + [self.nnet.last_layer.weight]
            biases = [l._bias() for l in layers] + [self.nnet.last_layer._bias()]
            return F.location_encoder(lonlat, self.legendre_polys, weights, biases,
                                      w0_first=layers[0].w0, w0_hidden=self.nnet.w0, precision=self.precision)
        feats = ops.spherical_harmonics(lonlat, self.legendre_polys)
        return self.nnet(feats, first_weight=w_first)

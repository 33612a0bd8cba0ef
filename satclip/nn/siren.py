"""SIREN layers as in SatCLIP's ``location_encoder.py``: ``Siren`` (one ``sin(w0 * (W x + b))``
layer, dropout before the sine in training mode) and ``SirenNet`` (sine layers + a linear last
layer). Keys ``layers.{i}.weight|bias``, ``last_layer.weight|bias``; weights are ``[out, in]``.
The sine layers run the fused ``satclip::siren_layer`` op (GEMM + bias + sine, cosine saved
for the backward)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import functional as F


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

    def bias_or_zeros(self) -> torch.Tensor:
        """The bias, or zeros for a layer built without one (the fused ops take a bias per layer)."""
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
        return F.siren_layer(x, w, self.bias_or_zeros(), self.w0, self.dropout_mask(x.shape[0]))

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

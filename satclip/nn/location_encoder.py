"""``LocationEncoder``: the SatCLIP location encoder, ``state_dict``-compatible with the original.

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

import torch
from torch import nn

from .. import functional as F
from ..ops import ops
from ..options import EncodeOptions, EncodePlan
from . import iso_latitude
from .siren import SirenNet
from .spherical_harmonics import SphericalHarmonics


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
            ``"float32"`` (exact, default), ``"tf32"``, ``"bf16"`` or ``"float16"`` (see
            :func:`satclip.functional.location_encoder`). Training always runs exact.
        factorise: inference on points that share latitudes (grids, HEALPix rings) with the
            first layer factorised over latitude rows (``satclip.nn.iso_latitude``):
            ``"auto"`` (default: L >= 20 and at most one distinct latitude per 32 points),
            ``"always"`` or ``"never"``. Precision ``"float32"`` only; the same numbers to
            float rounding.
        options: all of the inference options at once (:class:`satclip.options.EncodeOptions`:
            also the tile sizes); ``precision`` and ``factorise`` given as well override it.

    Inputs in another float dtype than the parameters are cast to the parameters' dtype.
    """

    def __init__(self, legendre_polys: int = 10, dim_hidden: int = 512, num_hidden_layers: int = 2,
                 dim_out: int = 256, harmonics: str = "analytic", dropout: bool = True, fused: bool = True,
                 precision: str | None = None, factorise: str | None = None, options: EncodeOptions | None = None):
        super().__init__()
        self.posenc = SphericalHarmonics(legendre_polys, harmonics)
        self.nnet = SirenNet(legendre_polys * legendre_polys, dim_hidden, dim_out, num_hidden_layers,
                             dropout=dropout)
        self.fused = fused
        given = {k: v for k, v in (("precision", precision), ("factorise", factorise)) if v is not None}
        self.options = (options or EncodeOptions()).replace(**given)  # checked here, not at the next forward

    @property
    def factorise(self) -> str:
        """Inference factorised over latitude rows (``"auto"``, ``"always"`` or ``"never"``)."""
        return self.options.factorise

    @factorise.setter
    def factorise(self, value: str) -> None:
        self.options = self.options.replace(factorise=value)

    @property
    def precision(self) -> str:
        """GEMM operand precision of the fused inference path (``"float32"``, ``"tf32"``, ``"bf16"`` or ``"float16"``)."""
        return self.options.precision

    @precision.setter
    def precision(self, value: str) -> None:
        self.options = self.options.replace(precision=value)

    def plan(self, dtype: torch.dtype | None = None, device: str | None = None) -> EncodePlan:
        """What the fused inference path runs for inputs of ``dtype`` on ``device`` (the
        parameters' by default): :func:`satclip.functional.plan` of ``self.options``, resolved once
        per options, dtype and device and kept (immutable). Raises ``ValueError`` for options that
        cannot run there (a reduced precision on a float64 encoder)."""
        w = self.nnet.layers[0].weight if len(self.nnet.layers) else self.nnet.last_layer.weight
        dtype = w.dtype if dtype is None else dtype
        device = w.device.type if device is None else device
        if torch.compiler.is_compiling():  # a traced forward resolves it without the cache
            return F.plan(self.options, self.legendre_polys, dtype, device)
        key = (self.options, dtype, device)
        plans = self.__dict__.setdefault("_plans", {})
        if key not in plans:
            if len(plans) >= 16:
                plans.clear()
            plans[key] = F.plan(self.options, self.legendre_polys, dtype, device)
        return plans[key]

    @property
    def dim_out(self) -> int:
        return self.nnet.dim_out

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

    def inference_layers(self, first_weight: torch.Tensor | None = None
                         ) -> tuple[list[torch.Tensor], list[torch.Tensor], float, float]:
        """``(weights, biases, w0_first, w0_hidden)`` of the fused inference path: the first
        layer's weight with the convention factors folded in (``first_weight`` when the caller
        folded it already), the hidden sine layers', the linear output's; a layer without bias
        gets zeros."""
        layers = list(self.nnet.layers)
        first = self.folded_first_weight() if first_weight is None else first_weight
        weights = [first] + [l.weight for l in layers[1:]] + [self.nnet.last_layer.weight]
        biases = [l.bias_or_zeros() for l in layers] + [self.nnet.last_layer.bias_or_zeros()]
        return weights, biases, float(layers[0].w0), float(self.nnet.w0)

    def forward(self, lonlat: torch.Tensor) -> torch.Tensor:
        F.validate_lonlat(lonlat)
        w_first = self.folded_first_weight()
        lonlat = lonlat.to(w_first.dtype)
        limit = self.options.latitude_limit
        if limit is not None:  # torchgeo's convention, when asked (EncodeOptions.latitude_limit)
            lonlat = torch.stack([lonlat[:, 0], lonlat[:, 1].clamp(-limit, limit)], 1)
        needs_grad = torch.is_grad_enabled() and (lonlat.requires_grad or any(
            p.requires_grad for p in self.parameters()))
        if self.fused and not needs_grad and not self.training:
            plan = self.plan(lonlat.dtype, lonlat.device.type)
            if plan.precision == "float32" and len(self.nnet.layers) >= 1 and (
                    plan.factorise == "always" or (plan.factorise == "auto" and iso_latitude.worth_it(lonlat, self.legendre_polys))):
                return iso_latitude.encoder_forward(self, lonlat, plan)
            weights, biases, w0_first, w0_hidden = self.inference_layers(w_first)
            return F.encode(lonlat, weights, biases, w0_first, w0_hidden, plan)
        feats = ops.spherical_harmonics(lonlat, self.legendre_polys)
        return self.nnet(feats, first_weight=w_first)

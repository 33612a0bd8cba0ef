"""Functional API: validated entry points over the ``satclip`` ops.

Coordinates are always ``[N, 2]`` tensors of (lon, lat) in **degrees, lon first**, as in
SatCLIP. Longitudes are periodic (any finite value is accepted); latitudes must lie in
[-90, 90]. float32 and float64 are supported; results have the dtype of the input.

Spherical-harmonic conventions (feature ``k = l*l + l + m``, ``m = -l..l``, ``L*L`` features):

``"orthonormal"``
    Plain real orthonormal SH (sphericart's convention): ``Y_l0 = Q_l0(sin lat)``,
    ``Y_l,+m = sqrt2 Q_lm cos(m lon)``, ``Y_l,-m = sqrt2 Q_lm sin(m lon)``.
``"analytic"`` (the released SatCLIP models)
    ``(-1)^l`` times the orthonormal value, and the ``m = 0`` features additionally times ``pi``
    (a normalisation slip of the original generator that the released weights were trained
    with). Computed accurately here; the original's expanded polynomials drift from this at
    high degree (docs/guides/checkpoints.md).
``"closed-form"``
    ``(-1)^(l+|m|)`` times the orthonormal value.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .ops import checks, degree_order, has_kernel, ops
from .options import FACTORISED_TILE_POINTS, PRECISIONS, EncodeOptions, EncodePlan, renamed  # noqa: F401  (PRECISIONS: public here since 0.1)

__all__ = ["CONVENTIONS", "convention_factors", "location_encoder", "plan", "siren_layer", "spherical_harmonics",
           "validate_lonlat"]

CONVENTIONS = ("analytic", "closed-form", "orthonormal")
_DTYPES = (torch.float32, torch.float64)


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def validate_lonlat(lonlat, name: str = "lonlat") -> torch.Tensor:
    """Checks a coordinate tensor and returns it; raises ``TypeError``/``ValueError`` naming
    the problem (wrong type, shape or dtype, NaN/inf, latitude outside [-90, 90])."""
    if not isinstance(lonlat, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [N, 2] (lon, lat in degrees), "
                        f"got {type(lonlat).__name__}")
    if lonlat.dim() != 2 or lonlat.shape[1] != 2:
        raise ValueError(f"{name} must have shape [N, 2] (lon, lat in degrees), got {list(lonlat.shape)}")
    if lonlat.dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {lonlat.dtype}")
    if _compiling() or lonlat.numel() == 0:
        return lonlat
    finite = torch.isfinite(lonlat)
    if not bool(finite.all()):
        bad = int((~finite.all(dim=1)).nonzero()[0])
        raise ValueError(f"{name} holds NaN or inf (first at row {bad}: {lonlat[bad].tolist()})")
    lat = lonlat[:, 1]
    out = lat.abs() > 90
    if bool(out.any()):
        bad = int(out.nonzero()[0])
        raise ValueError(f"{name} has a latitude outside [-90, 90] at row {bad}: {float(lat[bad])} "
                         "(columns are lon, lat in degrees, lon first)")
    return lonlat


def _check_degree(legendre_polys) -> int:
    if isinstance(legendre_polys, bool) or not isinstance(legendre_polys, int):
        raise TypeError(f"legendre_polys must be an int, got {type(legendre_polys).__name__}")
    if not 1 <= legendre_polys <= checks.MAX_DEGREE:
        raise ValueError(f"legendre_polys must be in [1, {checks.MAX_DEGREE}], got {legendre_polys}")
    return legendre_polys


def convention_factors(legendre_polys: int, convention: str = "analytic", *, dtype=torch.float64,
                       device=None) -> torch.Tensor:
    """``[L*L]`` factors that turn orthonormal SH into ``convention``'s values."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
    # a copy, so that no caller can change the cached table in place
    return _factors_float64(legendre_polys, convention).to(dtype=dtype, device=device, copy=True)


@lru_cache(maxsize=32)
def _factors_float64(L: int, convention: str) -> torch.Tensor:
    # Cached: the encoder folds these into its first layer on every forward.
    l, m = degree_order(L)
    f = torch.ones(L * L, dtype=torch.float64)
    if convention == "analytic":
        f = torch.where(l % 2 == 1, -f, f)
        f = torch.where(m == 0, f * math.pi, f)
    elif convention == "closed-form":
        f = torch.where((l + m.abs()) % 2 == 1, -f, f)
    return f


def spherical_harmonics(lonlat: torch.Tensor, legendre_polys: int, *, convention: str = "analytic",
                        validate: bool = True) -> torch.Tensor:
    """Real spherical harmonics of degrees ``0..legendre_polys-1``.

    Args:
        lonlat: ``[N, 2]`` float32/float64, (lon, lat) in degrees, lon first.
        legendre_polys: ``L``; the output has ``L*L`` features, feature ``l*l + l + m``.
        convention: ``"analytic"`` (released SatCLIP models, default), ``"closed-form"`` or
            ``"orthonormal"`` (see the module docstring).
        validate: check for NaN/inf and ``|lat| > 90`` (one device sync; skipped under torch.compile).

    Returns:
        ``[N, L*L]`` tensor of the input's dtype and device. Differentiable w.r.t. ``lonlat``
        (gradients in degrees^-1, finite at the poles).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
    L = _check_degree(legendre_polys)
    if validate:
        validate_lonlat(lonlat)
    if convention == "orthonormal":
        return ops.spherical_harmonics(lonlat, L)
    # the convention's per-feature factors applied where the kernel stores (no second pass)
    return ops.spherical_harmonics(lonlat, L, convention_factors(L, convention, dtype=lonlat.dtype,
                                                                  device=lonlat.device))


def siren_layer(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, w0: float = 1.0,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """``sin(w0 * (x @ weight.T + bias) * mask)`` as one op (GEMM + fused epilogue).

    Shapes: ``x [N, in]``, ``weight [out, in]``, ``bias [out]``, ``mask [N, out]`` or None
    (dropout mask with the 1/(1-p) scaling already applied). Saves the cosine for the backward
    only when a gradient is needed.
    """
    need_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or bias.requires_grad)
    y, _ = ops.siren_layer(x, weight, bias, float(w0), mask, need_grad)
    return y


def location_encoder(lonlat: torch.Tensor, legendre_polys: int, weights: list[torch.Tensor],
                     biases: list[torch.Tensor], *, w0_first: float = 30.0, w0_hidden: float = 1.0,
                     tile_points: int | None = None, precision: str = "float32",
                     chunk_size: int | None = None) -> torch.Tensor:
    """Fused inference: orthonormal SH -> sine layers -> linear, tile by tile.

    ``weights[0]`` must already carry the convention factors (see ``convention_factors``);
    ``weights[:-1]`` are sine layers (the first with ``w0_first``), ``weights[-1]`` is linear.
    Not differentiable; ``tile_points`` (points per tile, the encoder's workspace; the result
    does not depend on it) defaults to :func:`default_tile_points`. ``chunk_size``: the old name
    of ``tile_points`` (deprecated).

    ``precision`` (float32 encoders only): ``"float32"`` (exact, the default), ``"tf32"``,
    ``"bf16"`` or ``"float16"``: every GEMM's operands (SH features, activations, weights) rounded to that format,
    products and sums in float32, bias/w0/sine in float32 -- what tensor cores compute in those
    modes (on CUDA the GEMMs then run on them; on the CPU ``"tf32"`` runs as ``"float32"``, see
    ``run_precision``). Measured embedding error in ``benchmarks/results/precision-modes.md``
    (both below 1e-2 relative).
    """
    if chunk_size is not None:
        renamed("chunk_size=", "tile_points=", "satclip.functional.location_encoder")
        tile_points = chunk_size if tile_points is None else tile_points
    p = plan(EncodeOptions(precision=precision, tile_points=tile_points), legendre_polys, lonlat.dtype,
             lonlat.device.type)
    return encode(lonlat, weights, biases, w0_first, w0_hidden, p)


def plan(options: EncodeOptions, legendre_polys: int, dtype: torch.dtype, device_type: str) -> EncodePlan:
    """The fused encoder's :class:`~satclip.EncodePlan` for these options, degree, dtype
    and device: the one place options are checked against what they run on (a reduced precision
    needs float32; the degree's bounds), the CPU's tf32 -> float32 mapping and the default tile
    resolved. Raises ``ValueError`` naming the problem."""
    L = _check_degree(legendre_polys)
    if options.precision != "float32" and dtype != torch.float32:
        raise ValueError(f"precision={options.precision!r} applies to float32 encoders, got {dtype}; "
                         "use precision='float32' with float64")
    tile = options.tile_points or default_tile_points(L, dtype.itemsize, device_type,
                                                      compiled=_COMPILED_ENCODER.get(device_type, False))
    return EncodePlan(precision=options.precision, run_precision=run_precision(options.precision, device_type),
                      dtype=str(dtype).removeprefix("torch."), device=device_type, legendre_polys=L,
                      tile_points=int(tile), factorise=options.factorise,
                      factorised_tile_points=options.tile_points or FACTORISED_TILE_POINTS,
                      row_block_points=options.row_block_points, latitude_limit=options.latitude_limit)


def encode(lonlat: torch.Tensor, weights, biases, w0_first: float, w0_hidden: float, plan: EncodePlan) -> torch.Tensor:
    """:func:`location_encoder` by a plan already resolved (:func:`plan`; ``LocationEncoder`` keeps
    one per dtype and device)."""
    return ops.location_encoder_forward(lonlat, plan.legendre_polys, list(weights), list(biases), float(w0_first),
                                        float(w0_hidden), plan.tile_points, plan.run_precision)


def run_precision(precision: str, device_type: str) -> str:
    """The mode the op runs for ``precision`` on ``device_type``: ``"tf32"`` runs as ``"float32"``
    on the CPU. CPUs have no TF32 units, so rounding the operands first would only cost time, and
    float32's values lie within the error the tf32 mode states (docs/guides/precision.md)."""
    return "float32" if precision == "tf32" and device_type == "cpu" else precision


# Which devices have the compiled encoder (the kernels register when satclip.ops is imported);
# a constant, so that torch.compile does not trace the dispatcher query.
_COMPILED_ENCODER = {dev: has_kernel("location_encoder_forward", dev) for dev in ("cpu", "cuda")}


def default_tile_points(legendre_polys: int, itemsize: int, device_type: str = "cpu", compiled: bool = True) -> int:
    """Points per tile of the fused encoder. CPU, compiled kernel (one workspace for all
    tiles): one tile of SH features is about 8 MB, within [512, 16384] points: each tile's
    GEMMs re-pack the weights, so tiles of a few hundred points lose to whole-matrix GEMMs
    (measured: 327 points 0.83-0.91x, 1,024-2,048 points 0.92-1.0x of the whole-matrix GEMMs, AMD EPYC, 2026-12-05). CPU, pure-PyTorch fallback (fresh
    buffers per tile): about 2 MB, within [256, 16384] (the 8 MB rule was slower there). GPU:
    65536 points, enough to fill the device, within a 512 MB feature buffer."""
    per_point = max(1, legendre_polys * legendre_polys * itemsize)
    if device_type == "cuda":
        return int(max(1024, min(1 << 16, (512 << 20) // per_point)))
    if not compiled:
        return int(min(16384, max(256, (2 << 20) // per_point)))
    return int(min(16384, max(512, (8 << 20) // per_point)))

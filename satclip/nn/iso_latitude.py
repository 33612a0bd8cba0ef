"""The encoder's first layer factorised over latitude rows, for point sets whose points share
latitudes (lat/lon grids, land-only grid rows, HEALPix rings, tables with repeated latitudes).

The first layer's pre-activation is ``z = W Y(lat, lon) + b`` with ``W`` the first weight (SH
convention folded in, so ``Y`` is orthonormal; feature ``k = l*l + l + m``). Each feature is a
product of a latitude part and a longitude part,
``Y_lm(lat, lon) = Q_l|m|(lat) t_m(lon)`` with ``t_m = cos(m lon)`` (m >= 0) or ``sin(|m| lon)``
(m < 0) and ``Q_l|m|`` the value of the ``+|m|`` feature at ``lon = 0``, so

    z = sum over m of  A_m(lat) t_m(lon) + b,      A_m(lat) = sum over l >= |m| of W[:, (l, m)] Q_l|m|(lat).

``A`` costs ``L^2 H`` per distinct latitude (float64, then cast); each point then takes
``2L - 1`` terms per output instead of ``L^2``: at ``L = 40`` a first layer 20x cheaper, and the
whole encoder (hidden 512, 2 sine layers, 256 out) about 2.8x fewer multiply-adds. The longitude
parts come from a float64 angle-addition recurrence (``e^{i m x} = e^{i (m-1) x} e^{i x}``), cast
to the working dtype. The op ``satclip::iso_latitude_encoder_forward`` then runs one small GEMM
per row for the first layer and the usual sine layers, tile by tile over one workspace.

The results equal the plain path to the working precision's rounding (different summation
order). Used automatically (``LocationEncoder.factorise = "auto"``) when L >= 20 and a batch
holds at least 4,096 points and at most one distinct latitude per 32 points. The speed-up by
degree is measured in ``benchmarks/results/cpu.md`` (groups ``grid-0.25deg-*``) and on the docs' performance page.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ..ops import ops
from .. import functional as F
from ..options import EncodeOptions, EncodePlan

MIN_POINTS = 4096
MIN_POINTS_PER_LATITUDE = 32
# Below this degree the first layer is too small a share of the encoder for the factorisation to
# pay much (the gain by degree: benchmarks/results/cpu.md, groups grid-0.25deg-*; docs/performance.md).
MIN_DEGREE = 20


def worth_it(lonlat: torch.Tensor, legendre_polys: int) -> bool:
    """True for a batch with few distinct latitudes for its size at a degree where the first
    layer matters (the ``"auto"`` rule)."""
    n = lonlat.shape[0]
    if n < MIN_POINTS or legendre_polys < MIN_DEGREE:
        return False
    return int(torch.unique(lonlat[:, 1]).numel()) * MIN_POINTS_PER_LATITUDE <= n


@lru_cache(maxsize=16)
def _by_order(L: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Features sorted by order m (then degree): the permutation, the ``+|m|`` feature of each
    (whose value at lon = 0 is the latitude part), and where each order's block starts."""
    perm, plus, starts = [], [], []
    for m in range(-(L - 1), L):
        starts.append(len(perm))
        for l in range(abs(m), L):
            perm.append(l * l + l + m)
            plus.append(l * l + l + abs(m))
    starts.append(len(perm))
    return torch.tensor(perm), torch.tensor(plus), tuple(starts)


def _order_major(w: torch.Tensor, L: int) -> torch.Tensor:
    """The first weight ``[H, K]`` as ``[K, H]`` float64 with its features in order-major order."""
    perm, _, _ = _by_order(L)
    return w.double()[:, perm.to(w.device)].T.contiguous()


def _row_weights(lat: torch.Tensor, L: int, wt: torch.Tensor) -> torch.Tensor:
    """``A``: ``[R, 2L - 1, H]`` float64 (order index ``m + L - 1``), one GEMM per order;
    ``wt`` from :func:`_order_major`."""
    _, plus, starts = _by_order(L)
    y0 = ops.spherical_harmonics(torch.stack([torch.zeros_like(lat), lat], 1).double(), L)  # t_m(0) = 1 or 0
    q = y0[:, plus.to(lat.device)]                   # [R, K], features in order-major order
    a = torch.empty(q.shape[0], 2 * L - 1, wt.shape[1], dtype=torch.float64, device=wt.device)
    for j in range(2 * L - 1):
        torch.mm(q[:, starts[j]:starts[j + 1]], wt[starts[j]:starts[j + 1]], out=a[:, j])
    return a


def _longitude_parts(lon: torch.Tensor, L: int, dtype) -> torch.Tensor:
    """``[n, 2L - 1]``: ``sin(|m| lon)`` for m < 0, ``cos(m lon)`` for m >= 0 (float64 recurrence;
    computed once per distinct longitude when they repeat, as on a grid)."""
    ulon, inv = torch.unique(lon, return_inverse=True)
    if ulon.numel() * 4 > lon.numel():
        ulon, inv = lon, None
    x = torch.deg2rad(ulon.double())
    c1, s1 = torch.cos(x), torch.sin(x)
    cos = [torch.ones_like(x)]
    sin = [torch.zeros_like(x)]
    for _ in range(1, L):
        c, s = cos[-1], sin[-1]
        cos.append(c * c1 - s * s1)
        sin.append(s * c1 + c * s1)
    t = torch.stack(sin[:0:-1] + cos, 1).to(dtype)  # m = -(L-1) .. -1 (sin |m|), then 0 .. L-1 (cos m)
    return t if inv is None else t[inv]


def encoder_forward(enc, lonlat: torch.Tensor, plan: EncodePlan | EncodeOptions | None = None) -> torch.Tensor:
    """The whole :class:`~satclip.nn.LocationEncoder` (inference) with the factorised first layer:
    points grouped by latitude (kept in place when already grouped, as grid rows are), then
    blocks of whole rows of up to ``plan.row_block_points`` points (bounded memory for the
    longitude parts and row weights) through ``satclip::iso_latitude_encoder_forward``, which
    works in tiles of about ``plan.factorised_tile_points`` points (default 4,096) over one
    workspace. ``plan``: the encoder's (:meth:`~satclip.nn.LocationEncoder.plan`) by default;
    options given instead are resolved into one (:func:`satclip.functional.plan`)."""
    if isinstance(plan, EncodeOptions):
        plan = F.plan(plan, enc.legendre_polys, lonlat.dtype, lonlat.device.type)
    plan = plan or enc.plan(lonlat.dtype, lonlat.device.type)
    tile_points = plan.factorised_tile_points
    block_points = plan.row_block_points
    n = lonlat.shape[0]
    if n == 0:
        return torch.empty(0, enc.dim_out, dtype=lonlat.dtype, device=lonlat.device)
    ulat, inv, counts = torch.unique(lonlat[:, 1], return_inverse=True, return_counts=True)
    order = None
    if not bool((inv[1:] >= inv[:-1]).all()):       # rows not contiguous: group them
        order = torch.argsort(inv, stable=True)
        lonlat = lonlat[order]
    L = enc.legendre_polys
    layer_weights, biases, w0_first, w0_hidden = enc.inference_layers()
    wt = _order_major(layer_weights[0], L)
    weights = layer_weights[1:]
    counts = counts.tolist()
    target = None  # the output in row order
    r0, lo = 0, 0
    while r0 < len(counts):
        r1, size = r0, 0
        while r1 < len(counts) and (size == 0 or size + counts[r1] <= block_points):
            size += counts[r1]
            r1 += 1
        a = _row_weights(ulat[r0:r1], L, wt).to(lonlat.dtype)     # [R, 2L-1, H]
        t = _longitude_parts(lonlat[lo:lo + size, 0], L, lonlat.dtype)  # [size, 2L-1]
        y = ops.iso_latitude_encoder_forward(t, a, counts[r0:r1], weights, biases, w0_first, w0_hidden, tile_points)
        if size == n:
            target = y
        else:
            if target is None:
                target = torch.empty(n, y.shape[1], dtype=y.dtype, device=y.device)
            target[lo:lo + size] = y
        r0, lo = r1, lo + size
    if order is None:
        return target
    out = torch.empty_like(target)
    out[order] = target
    return out

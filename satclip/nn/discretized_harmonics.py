"""``DiscretizedSphericalHarmonics``: the original's ``harmonics_calculation="discretized"``,
spherical harmonics read from a precomputed lon/lat table instead of evaluated per point.

The table, exactly as the original lays it out:

* nodes ``lon_i = linspace(-180, 180, 360)[i]`` and ``lat_j = linspace(-90, 90, 180)[j]``
  (float32 ``linspace``: steps of 360/359 and 180/179 degrees, *not* one degree);
* value ``T[k, i, j] = Y_k(lon_i, lat_j)`` in the ``"analytic"`` convention (feature
  ``k = l*l + l + m``), computed as the original computes it, bit for bit: its generator's
  sympy expressions (:func:`original_expressions`, the real-SH formula with the m = 0 ``pi``
  slip, printed with ``evalf``) evaluated on float32 angles in float32 arithmetic. (A table
  evaluated accurately in float64 and rounded differs from it in the last bits, which a trained
  network can amplify.) Here it is held as ``[360 * 180, L*L]`` (row ``i * 180 + j``) so that a
  lookup gathers whole rows. Building it needs sympy (a dependency of torch): about a second at
  L = 10, minutes at L = 40, once per process.

The lookup, quirks kept on purpose (the released code has them and weights trained with it
expect them):

* a point is indexed by ``p = (lon + 180, lat + 90)`` as if the nodes were one degree apart;
  ``floor(p)`` and ``ceil(p)`` are clamped to the table (``[0, 359] x [0, 179]``) while the
  fractional part ``f = p - floor(p)`` is taken before clamping;
* only two corners are blended: ``(1 - f_lon)(1 - f_lat) T[floor] + f_lon (1 - f_lat) T[ceil]``
  (``ceil`` in both coordinates). The weights sum to ``1 - f_lat``, so between integer
  latitudes the features shrink towards zero; at integer (lon, lat) the value is the node's.

Differentiable in lon/lat through the weights (as in the original); the table itself is a
constant. Memory: ``64,800 * L*L * 4`` bytes (26 MB at L = 10, 415 MB at L = 40), built on the
first call and kept per device.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from .. import functional as F

N_LON, N_LAT = 360, 180


@lru_cache(maxsize=4)
def original_expressions(legendre_polys: int) -> tuple[str, ...]:
    """The original generator's expression of every feature ``k = l*l + l + m`` as text: the
    real-SH formula with sympy's ``assoc_legendre`` in ``cos(theta)`` (Condon-Shortley phase
    undone by ``(-1)^m``; ``sqrt((2l+1)/4*pi)`` on m = 0, the slip the released weights were
    trained with), printed after ``evalf()`` as the original prints it. In ``theta`` (colatitude
    from the south, ``lat + 90`` degrees in radians) and ``phi`` (``lon + 180``)."""
    from sympy import Abs, Symbol, assoc_legendre, cos, factorial, pi, sin, sqrt

    theta, phi = Symbol("theta"), Symbol("phi")
    out = []
    for l in range(legendre_polys):
        for m in range(-l, l + 1):
            if m == 0:
                y = sqrt((2 * l + 1) / 4 * pi) * assoc_legendre(l, m, cos(theta))
            else:
                a = Abs(m)
                norm = sqrt(((2 * l + 1) / (4 * pi)) * (factorial(l - a) / factorial(l + a)))
                y = (-1) ** m * sqrt(2) * (norm * assoc_legendre(l, a, cos(theta))) * (
                    sin(a * phi) if m < 0 else cos(m * phi))
            out.append(str(y.evalf()))
    return tuple(out)


def original_analytic_sh(phi: torch.Tensor, theta: torch.Tensor, legendre_polys: int) -> torch.Tensor:
    """``[..., L*L]``: :func:`original_expressions` evaluated elementwise on ``phi``/``theta`` in
    their dtype (float32 for the original's table, float64 for its per-point "analytic" SH)."""
    env = {"cos": torch.cos, "sin": torch.sin, "sqrt": torch.sqrt, "Abs": torch.abs, "theta": theta, "phi": phi}
    cols = []
    for expr in original_expressions(legendre_polys):
        v = eval(expr, {"__builtins__": {}}, env)  # noqa: S307  (sympy's printout of our own formula)
        cols.append(v * torch.ones_like(phi))
    return torch.stack(cols, -1)


def discretized_table(legendre_polys: int) -> torch.Tensor:
    """``[360 * 180, L*L]`` float32: the original's table (row ``i * 180 + j``, see above), with
    its float32 arithmetic step by step: ``linspace`` nodes, a meshgrid read in xy order,
    ``deg2rad(lon + 180)`` and ``deg2rad(lat + 90)``, the expressions on those angles."""
    lon = torch.linspace(-180, 180, N_LON)  # float32, as the original's torch.linspace
    lat = torch.linspace(-90, 90, N_LAT)
    lons, lats = torch.meshgrid(lon, lat, indexing="ij")
    lons, lats = lons.T, lats.T                        # [180, 360], as the original (xy order)
    y = original_analytic_sh(torch.deg2rad(lons + 180), torch.deg2rad(lats + 90), legendre_polys)
    return y.permute(1, 0, 2).reshape(N_LON * N_LAT, -1).contiguous()  # row i * 180 + j


class DiscretizedSphericalHarmonics(nn.Module):
    """``[N, 2]`` (lon, lat) degrees -> ``[N, L*L]``: the original's table lookup (see module doc)."""

    def __init__(self, legendre_polys: int = 10):
        super().__init__()
        F._check_degree(legendre_polys)
        self.L = int(legendre_polys)
        self.embedding_dim = self.L * self.L
        self._tables: dict[torch.device, torch.Tensor] = {}  # not in the state_dict, as the original

    def table(self, device) -> torch.Tensor:
        device = torch.device(device)
        if device not in self._tables:
            cpu = self._tables.get(torch.device("cpu"))
            if cpu is None:
                cpu = self._tables[torch.device("cpu")] = discretized_table(self.L)
            self._tables[device] = cpu.to(device)
        return self._tables[device]

    def forward(self, lonlat: torch.Tensor) -> torch.Tensor:
        if lonlat.dim() != 2 or lonlat.shape[1] != 2:
            raise ValueError(f"expected lonlat of shape [N, 2] (lon, lat in degrees), got {list(lonlat.shape)}")
        p = lonlat + torch.tensor([180.0, 90.0], dtype=lonlat.dtype, device=lonlat.device)
        lo, hi = torch.floor(p), torch.ceil(p)
        frac = p - lo  # before clamping, as the original
        limit = torch.tensor([N_LON - 1, N_LAT - 1], device=p.device)
        lo_i = torch.minimum(lo.long().clamp_min(0), limit)
        hi_i = torch.minimum(hi.long().clamp_min(0), limit)
        table = self.table(lonlat.device)
        v_lo = table[lo_i[:, 0] * N_LAT + lo_i[:, 1]].to(lonlat.dtype)
        v_hi = table[hi_i[:, 0] * N_LAT + hi_i[:, 1]].to(lonlat.dtype)
        w_lo = (1 - frac[:, 0]) * (1 - frac[:, 1])
        w_hi = frac[:, 0] * (1 - frac[:, 1])
        return v_lo * w_lo[:, None] + v_hi * w_hi[:, None]

    def extra_repr(self) -> str:
        return f"legendre_polys={self.L}, table={N_LON}x{N_LAT}"

"""Re-creation of the original SatCLIP "analytic" spherical harmonics, for comparisons.

The original generator builds, for every (l, m), the Wikipedia real-SH formula with sympy's
``assoc_legendre`` in ``cos(theta)`` (``theta = lat + 90`` deg, ``phi = lon + 180`` deg, the
``sqrt((2l+1)/4*pi)`` slip on m = 0), prints ``expr.evalf()`` (15 significant digits) and
evaluates that text with torch in float64. This module re-creates that path from the same
formula (it is not the original file). The values match satclip's accurate ``"analytic"``
convention to ~1e-12 at L = 10 and drift at high degree (0.6 at l = 39 near the poles): use it
to measure that drift, not for production (it is slow: sympy needs minutes at L = 40).
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=4)
def original_expressions(L: int) -> tuple[str, ...]:
    from sympy import Abs, Symbol, assoc_legendre, cos, factorial, pi, sin, sqrt

    theta, phi = Symbol("theta"), Symbol("phi")
    out = []
    for l in range(L):
        for m in range(-l, l + 1):
            am = abs(m)
            if m == 0:
                y = sqrt((2 * l + 1) / 4 * pi) * assoc_legendre(l, 0, cos(theta))  # the pi slip
            else:
                norm = sqrt(((2 * l + 1) / (4 * pi)) * (factorial(l - am) / factorial(l + am)))
                trig = sin(am * phi) if m < 0 else cos(m * phi)
                y = (-1) ** m * sqrt(2) * norm * assoc_legendre(l, am, cos(theta)) * trig
            out.append(str(y.evalf()))
    return tuple(out)


def original_analytic_sh(lonlat: torch.Tensor, legendre_polys: int) -> torch.Tensor:
    """``[N, 2]`` (lon, lat) degrees -> ``[N, L*L]`` float64, as the original evaluates them."""
    exprs = original_expressions(legendre_polys)
    lonlat = lonlat.double()
    phi = torch.deg2rad(lonlat[:, 0] + 180)
    theta = torch.deg2rad(lonlat[:, 1] + 90)
    env = {"cos": torch.cos, "sin": torch.sin, "sqrt": torch.sqrt, "Abs": torch.abs, "theta": theta, "phi": phi}
    cols = []
    for e in exprs:
        v = eval(e, {"__builtins__": {}}, env)  # noqa: S307  (our own sympy output)
        cols.append(v if isinstance(v, torch.Tensor) else torch.full_like(phi, float(v)))
    return torch.stack(cols, -1)

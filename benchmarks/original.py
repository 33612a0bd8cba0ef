"""The original SatCLIP location encoder re-created for comparisons (the benchmarks' "original"
baselines: training step in bench_train.py, inference in bench_encoder.py; the drift measured by
sh_deviation.py; tests/functional/test_conventions.py): its "analytic" SH as it evaluates them
and a SIREN of plain layers (F.linear, dropout before the sine), float64 as the original runs it.

The original generator builds, for every (l, m), the Wikipedia real-SH formula with sympy's
``assoc_legendre`` in ``cos(theta)`` (``theta = lat + 90`` deg, ``phi = lon + 180`` deg, the
``sqrt((2l+1)/4*pi)`` slip on m = 0), prints ``expr.evalf()`` (15 significant digits) and
evaluates that text with torch in float64. :func:`original_analytic_sh` re-creates that path
from the same formula (it is not the original file). The values match satclip's accurate
``"analytic"`` convention to ~1e-12 at L = 10 and drift at high degree (0.6 at l = 39 near the
poles): use it to measure that drift (it is slow: sympy needs minutes at L = 40). Not part of
the package.
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




class OriginalSirenLayer(torch.nn.Module):
    """The original's Siren layer: F.linear, dropout before the activation, sin(w0 * x)."""

    def __init__(self, d_in, d_out, w0, sine=True, dropout=False):
        super().__init__()
        self.linear, self.w0, self.sine, self.dropout = torch.nn.Linear(d_in, d_out), w0, sine, dropout

    def forward(self, x):
        out = self.linear(x)
        if self.dropout:
            out = torch.nn.functional.dropout(out, training=self.training)
        return torch.sin(self.w0 * out) if self.sine else out


class OriginalLocationEncoder(torch.nn.Module):
    """The original location side in float64: its "analytic" SH as it evaluates them
    (:func:`original_analytic_sh`) and a SIREN of plain layers."""

    def __init__(self, L, hidden=512, out=256):
        super().__init__()
        self.L = L
        self.layers = torch.nn.ModuleList([OriginalSirenLayer(L * L, hidden, 30.0, dropout=True),
                                           OriginalSirenLayer(hidden, hidden, 1.0, dropout=True)])
        self.last = OriginalSirenLayer(hidden, out, 1.0, sine=False)

    def forward(self, lonlat):
        x = original_analytic_sh(lonlat, self.L)
        for layer in self.layers:
            x = layer(x)
        return self.last(x)

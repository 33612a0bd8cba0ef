"""The original SatCLIP location encoder re-created for comparisons (the benchmarks' "original"
baselines: training step in bench_train.py, inference in bench_encoder.py; the drift measured by
sh_deviation.py; tests/functional/test_conventions.py): its "analytic" SH as it evaluates them
and a SIREN of plain layers (F.linear, dropout before the sine), float64 as the original runs it.

The original generator builds, for every (l, m), the Wikipedia real-SH formula with sympy's
``assoc_legendre`` in ``cos(theta)`` (``theta = lat + 90`` deg, ``phi = lon + 180`` deg, the
``sqrt((2l+1)/4*pi)`` slip on m = 0), prints ``expr.evalf()`` (15 significant digits) and
evaluates that text with torch in float64. :func:`original_analytic_sh` re-creates that path
from the same formula (it is not the original file; the generator lives in the package, in
``satclip.nn.discretized_harmonics``, whose table needs it). The values match satclip's accurate
``"analytic"`` convention to ~1e-12 at L = 10 and drift at high degree (0.6 at l = 39 near the
poles): use it to measure that drift (it is slow: sympy needs minutes at L = 40). Not part of
the package.
"""

from __future__ import annotations

import torch

from satclip.nn.discretized_harmonics import original_expressions  # noqa: F401  (the generator's formula)


def original_analytic_sh(lonlat: torch.Tensor, legendre_polys: int) -> torch.Tensor:
    """``[N, 2]`` (lon, lat) degrees -> ``[N, L*L]`` float64, as the original evaluates them."""
    from satclip.nn.discretized_harmonics import original_analytic_sh as evaluate
    lonlat = lonlat.double()
    return evaluate(torch.deg2rad(lonlat[:, 0] + 180), torch.deg2rad(lonlat[:, 1] + 90), legendre_polys)




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

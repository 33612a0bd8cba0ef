"""The original SatCLIP location encoder re-created for the benchmarks' "original" baselines
(training step in bench_train.py, inference in bench_encoder.py): its "analytic" SH as it
evaluates them (satclip.compat: the sympy-expanded expressions in torch) and a SIREN of plain
layers (F.linear, dropout before the sine), float64 as the original runs it."""

import torch


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
    (satclip.compat: sympy-expanded expressions in torch) and a SIREN of plain layers."""

    def __init__(self, L, hidden=512, out=256):
        super().__init__()
        self.L = L
        self.layers = torch.nn.ModuleList([OriginalSirenLayer(L * L, hidden, 30.0, dropout=True),
                                           OriginalSirenLayer(hidden, hidden, 1.0, dropout=True)])
        self.last = OriginalSirenLayer(hidden, out, 1.0, sine=False)

    def forward(self, lonlat):
        from satclip.compat import original_analytic_sh
        x = original_analytic_sh(lonlat, self.L)
        for layer in self.layers:
            x = layer(x)
        return self.last(x)

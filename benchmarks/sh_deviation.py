"""How far the original SatCLIP "analytic" SH (sympy-expanded polynomials evaluated in float64)
drift from the accurate SH computed by satclip, and what that does to embeddings.

The original path is re-created by ``original_analytic_sh`` of ``benchmarks/original.py`` and compared with
``satclip.functional.spherical_harmonics(..., convention="analytic")``.

Run: ``.venv/bin/python benchmarks/sh_deviation.py [L]`` (L = 40 takes a few minutes, most of
it in sympy). Writes ``benchmarks/results/sh-deviation-L{L}.json`` and ``.md``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch


def main(L: int = 40) -> None:
    import satclip
    from satclip import functional as F
    from satclip.ops.reference import degree_order
    from original import original_analytic_sh, original_expressions  # benchmarks/original.py

    t0 = time.time()
    original_expressions(L)
    t_gen = time.time() - t0
    g = torch.Generator().manual_seed(0)
    n = 20000
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    lat = torch.rad2deg(torch.asin(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1))
    x = torch.stack([lon, lat], 1)
    orig = original_analytic_sh(x, L)
    ours = F.spherical_harmonics(x, L, convention="analytic")
    diff = (orig - ours).abs()
    ls, _ = degree_order(L)
    per_l = [float(diff[:, ls == l].max()) for l in range(L)]
    worst = int(diff.max(0).values.argmax())
    wl = int(ls[worst])
    wm = worst - wl * wl - wl

    torch.manual_seed(0)
    enc = satclip.LocationEncoder(L, 512, 2, 256).double().eval()
    with torch.no_grad():
        e_ours = enc(x)
        w = [enc.nnet.layers[0].weight, enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
        h = torch.sin(30 * (orig @ w[0].t() + enc.nnet.layers[0].bias))
        h = torch.sin(h @ w[1].t() + enc.nnet.layers[1].bias)
        e_orig = h @ w[2].t() + enc.nnet.last_layer.bias
    d_emb = (e_ours - e_orig).abs().max(1).values
    rel = (e_ours - e_orig).norm(dim=1) / e_ours.norm(dim=1)
    bands = [(0, 30), (30, 60), (60, 80), (80, 90)]
    rows = []
    for lo, hi in bands:
        sel = (lat.abs() >= lo) & (lat.abs() <= hi)
        rows.append({"abs_lat": f"{lo}-{hi}", "points": int(sel.sum()),
                     "sh_max_abs_diff": float(diff[sel].max()),
                     "emb_max_abs_diff": float(d_emb[sel].max()), "emb_median_abs_diff": float(d_emb[sel].median()),
                     "emb_max_rel_l2": float(rel[sel].max())})
    res = {"L": L, "points": n, "sympy_generation_s": round(t_gen, 1), "sh_max_abs_diff": float(diff.max()),
           "worst_feature": {"l": wl, "m": wm}, "sh_max_abs_diff_per_degree": per_l, "bands": rows,
           "encoder": "random init (seed 0), L=%d, hidden 512, 2 sine layers, 256 out, float64" % L,
           "torch": torch.__version__, "command": f"python benchmarks/sh_deviation.py {L}"}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"sh-deviation-L{L}.json").write_text(json.dumps(res, indent=2))
    md = [f"# Original 'analytic' SH vs accurate SH, L = {L} ({n} random points, float64)", "",
          f"Largest SH difference: {res['sh_max_abs_diff']:.3g} (feature l={wl}, m={wm}).", "",
          "| abs(lat) band | points | max abs SH diff | max abs emb diff | median abs emb diff | max rel L2 emb diff |",
          "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['abs_lat']} | {r['points']} | {r['sh_max_abs_diff']:.2e} | {r['emb_max_abs_diff']:.2e} | "
                  f"{r['emb_median_abs_diff']:.2e} | {r['emb_max_rel_l2']:.2e} |")
    md += ["", "Max abs SH difference per degree l: " + ", ".join(f"{l}: {v:.1e}" for l, v in enumerate(per_l)),
           "", f"Command: `{res['command']}` (torch {torch.__version__})."]
    (out / f"sh-deviation-L{L}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)

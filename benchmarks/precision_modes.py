"""Accuracy of reduced-precision GEMM modes for the location encoder, measured on the CPU by
emulating their rounding (which does not depend on the chip): every GEMM input is rounded to
the mode's format, products are accumulated in float64 (float32 accumulation adds ~1e-7).

Modes: fp32 (SH and GEMMs in float32), tf32 / bf16 on every layer, tf32 / bf16 on the hidden
and last layers only (first layer, w0 = 30, kept in float32), and bf16x3 on the first layer
(split bf16: x = hi + lo, W = Hi + Lo, x W = hi Hi + hi Lo + lo Hi). The reference is the
float64 encoder. A mode whose embedding error exceeds 1e-2 relative must not be offered
(issue: CUDA kernels, precision modes).

Run: .venv/bin/python benchmarks/precision_modes.py  -> benchmarks/results/precision-modes.{json,md}
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

import satclip
from satclip import functional as F
from satclip.ops.reference import round_operand


def tf32(x: torch.Tensor) -> torch.Tensor:
    return round_operand(x.float(), "tf32")  # 10 explicit mantissa bits, round to nearest even


def bf16(x: torch.Tensor) -> torch.Tensor:
    return round_operand(x.float(), "bf16")


def mm(x, w, rnd):
    return rnd(x).double() @ rnd(w).double().t()


def mm_bf16x3(x, w):
    xh, wh = bf16(x), bf16(w)
    xl, wl = bf16(x.float() - xh), bf16(w.float() - wh)
    return xh.double() @ wh.double().t() + xh.double() @ wl.double().t() + xl.double() @ wh.double().t()


def forward(enc, feats, first, rest):
    layers = list(enc.nnet.layers)
    w0 = enc.folded_first_weight()
    h = torch.sin(30.0 * (first(feats, w0) + layers[0].bias.double()))
    for layer in layers[1:]:
        h = torch.sin(layer.w0 * (rest(h, layer.weight) + layer.bias.double()))
    return rest(h, enc.nnet.last_layer.weight) + enc.nnet.last_layer.bias.double()


def implemented_modes(x: torch.Tensor) -> list[dict]:
    """Every offered mode through the real op, against the float64 encoder."""
    encoders = {}
    for L in (10, 40):
        torch.manual_seed(0)
        encoders[f"random-init L={L}"] = satclip.LocationEncoder(L, 512, 2, 256).eval()
    encoders["bundled default model (L=10, trained)"] = satclip.default_model()
    rows = []
    for name, enc in encoders.items():
        with torch.no_grad():
            ref = enc.double()(x)
            enc.float()
            for mode in F.PRECISIONS:
                enc.precision = mode
                emb = enc(x.float()).double()
                rel = (emb - ref).norm(dim=1) / ref.norm(dim=1)
                cos = torch.nn.functional.cosine_similarity(emb, ref, dim=1)
                rows.append({"encoder": name, "mode": mode, "max_rel_l2": float(rel.max()),
                             "median_rel_l2": float(rel.median()), "min_cosine": float(cos.min()),
                             "offered": bool(rel.max() <= 1e-2)})
    return rows


def main():
    ident = lambda t: t.float()  # noqa: E731  (fp32 rounding of GEMM inputs)
    modes = {
        "fp32": (lambda x, w: mm(x, w, ident), lambda x, w: mm(x, w, ident)),
        "tf32 all layers": (lambda x, w: mm(x, w, tf32), lambda x, w: mm(x, w, tf32)),
        "tf32 hidden+last (first fp32)": (lambda x, w: mm(x, w, ident), lambda x, w: mm(x, w, tf32)),
        "bf16 all layers": (lambda x, w: mm(x, w, bf16), lambda x, w: mm(x, w, bf16)),
        "bf16 hidden+last (first fp32)": (lambda x, w: mm(x, w, ident), lambda x, w: mm(x, w, bf16)),
        "bf16 hidden+last, first bf16x3": (mm_bf16x3, lambda x, w: mm(x, w, bf16)),
    }
    g = torch.Generator().manual_seed(0)
    n = 20000
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    lat = torch.rad2deg(torch.asin(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1))
    x = torch.stack([lon, lat], 1)
    rows = []
    for L in (10, 40):
        torch.manual_seed(0)
        enc = satclip.LocationEncoder(L, 512, 2, 256).double().eval()
        with torch.no_grad():
            ref = enc(x)
            feats32 = F.spherical_harmonics(x.float(), L, convention="orthonormal").double()
            for name, (first, rest) in modes.items():
                emb = forward(enc, feats32, first, rest)
                rel = (emb - ref).norm(dim=1) / ref.norm(dim=1)
                cos = torch.nn.functional.cosine_similarity(emb, ref, dim=1)
                rows.append({"L": L, "mode": name, "max_rel_l2": float(rel.max()), "median_rel_l2": float(rel.median()),
                             "min_cosine": float(cos.min()), "offered": bool(rel.max() <= 1e-2)})
    op_rows = implemented_modes(x)
    out = Path(__file__).parent / "results"
    (out / "precision-modes.json").write_text(json.dumps({"emulated": rows, "op": op_rows}, indent=1))
    md = ["# Reduced-precision modes: embedding error vs the float64 encoder (emulated rounding, CPU)", "",
          "Random-init encoder (seed 0), hidden 512, 2 sine layers, 256 out; 20,000 uniform points; SH in float32.",
          "", "| L | mode | max rel L2 | median rel L2 | min cosine | error <= 1e-2 |", "| --- | --- | --- | --- | --- | --- |"]
    md += [f"| {r['L']} | {r['mode']} | {r['max_rel_l2']:.2e} | {r['median_rel_l2']:.2e} | {r['min_cosine']:.6f} | "
           f"{'yes' if r['offered'] else 'no'} |" for r in rows]
    md += ["", "## The implemented option (`LocationEncoder.precision`, the fused op on the CPU)", "",
           "Float32 accumulation; the bundled default model is a trained encoder (trained weights can be "
           "more sensitive than random ones).", "",
           "| encoder | mode | max rel L2 | median rel L2 | min cosine | error <= 1e-2 |", "| --- | --- | --- | --- | --- | --- |"]
    md += [f"| {r['encoder']} | {r['mode']} | {r['max_rel_l2']:.2e} | {r['median_rel_l2']:.2e} | "
           f"{r['min_cosine']:.6f} | {'yes' if r['offered'] else 'no'} |" for r in op_rows]
    md += ["", "Command: `.venv/bin/python benchmarks/precision_modes.py`."]
    (out / "precision-modes.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

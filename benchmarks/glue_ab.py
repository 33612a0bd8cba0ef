"""A/B timing of two builds of this package on the CPU, e.g. the stable-ABI glue against the
glue it replaced: each build is an unpacked wheel folder (``satclip/`` with its ``_C.so``), run in
its own process (two builds of one op library cannot share a process), alternating A, B, A, B, ...
for ``--rounds`` rounds; each case's figure is the best of all its runs. What is timed is what
users call: ``satclip.functional.spherical_harmonics`` (forward, and backward through autograd),
``LocationEncoder`` inference in float32 / bf16 / float64, a training step (forward +
backward) of the encoder, and the streaming CLIP loss (forward + backward).

    python benchmarks/glue_ab.py --a /tmp/old --b /tmp/new --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CASES = ["sh_fwd L=40 f32", "sh_fwd+bwd L=40 f32", "encoder L=10 f32", "encoder L=40 f32", "encoder L=10 bf16",
         "encoder L=40 bf16", "encoder L=40 f64", "train step L=40 f32", "clip loss fwd+bwd b=8192 f32"]


def child(repeats: int, only: str = "") -> None:
    import torch

    import satclip
    from satclip.nn import LocationEncoder

    torch.set_num_threads(2)
    torch.manual_seed(0)
    n = 50_000
    x = torch.rand(n, 2, dtype=torch.float64) * torch.tensor([360.0, 180.0]) - torch.tensor([180.0, 90.0])
    x32 = x.float()
    encs = {L: LocationEncoder(L, 256, 2, 256).float().eval() for L in (10, 40)}
    enc64 = LocationEncoder(40, 256, 2, 256).double().eval()
    train = LocationEncoder(40, 256, 2, 256).float().train()

    def sh_bwd():
        xg = x32[:20_000].clone().requires_grad_(True)
        satclip.functional.spherical_harmonics(xg, 40).sum().backward()

    def enc(L, precision):
        e = encs[L]
        e.precision = precision

        def run():
            with torch.no_grad():
                e(x32)
        return run

    def enc64_run():
        with torch.no_grad():
            enc64(x[:10_000])

    def train_step():
        train.zero_grad()
        train(x32[:8_192]).square().mean().backward()

    img = torch.nn.functional.normalize(torch.randn(8192, 256), dim=1).requires_grad_(True)
    loc = torch.nn.functional.normalize(torch.randn(8192, 256), dim=1).requires_grad_(True)
    scale = torch.tensor(2.659).requires_grad_(True)  # log(1 / 0.07), the CLIP initial temperature

    def clip_loss():
        from satclip.training.loss import clip_loss as loss
        loss(img, loc, scale, gather=False).backward()

    fns = {"clip loss fwd+bwd b=8192 f32": clip_loss, "sh_fwd L=40 f32": lambda: satclip.functional.spherical_harmonics(x32, 40),
           "sh_fwd+bwd L=40 f32": sh_bwd, "encoder L=10 f32": enc(10, "float32"), "encoder L=40 f32": enc(40, "float32"),
           "encoder L=10 bf16": enc(10, "bf16"), "encoder L=40 bf16": enc(40, "bf16"),
           "encoder L=40 f64": enc64_run, "train step L=40 f32": train_step}
    best = {}
    for name in [c for c in CASES if only in c]:
        fns[name]()  # warm-up (and the bf16 path's one timed choice)
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fns[name]()
            t.append(time.perf_counter() - t0)
        best[name] = min(t)
    info = satclip.backend_info()["ops"]["location_encoder_forward"]["cpu"]
    print(json.dumps({"best": best, "backend": info, "file": satclip.__file__}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="folder holding build A's satclip/ (e.g. the old glue)")
    p.add_argument("--b", required=True, help="folder holding build B's satclip/")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case in each process")
    p.add_argument("--cases", default="", help="only the cases whose name contains this text")
    args = p.parse_args()
    best = {"a": {}, "b": {}}
    for r in range(args.rounds):
        for side in ("a", "b"):
            env = {**os.environ, "PYTHONPATH": getattr(args, side), "SATCLIP_EXPECT_EXTENSION": "1"}
            out = subprocess.run([sys.executable, __file__, "--child", str(args.repeats), args.cases], env=env, check=True,
                                 capture_output=True, text=True, cwd="/").stdout.strip().splitlines()[-1]
            res = json.loads(out)
            if r == 0:
                print(f"{side}: {res['file']} ({res['backend']})", file=sys.stderr)
            for k, v in res["best"].items():
                best[side][k] = min(best[side].get(k, float("inf")), v)
    print(f"| case | A ms | B ms | B/A time |\n|---|---|---|---|")
    for k in [c for c in CASES if args.cases in c]:
        a, b = best["a"][k] * 1e3, best["b"][k] * 1e3
        print(f"| {k} | {a:.1f} | {b:.1f} | {b / a:.3f} |")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
    else:
        main()

"""Command line: ``satclip info | demo``."""

from __future__ import annotations

import argparse
import json
import sys
import time


def _cmd_info(args) -> int:
    import satclip

    info = satclip.backend_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    ext = info["extension"]
    print(f"satclip {satclip.__version__}, torch {info['torch']}, CUDA device: {info['cuda_available']}")
    print(f"compiled extension: {'loaded' if ext['loaded'] else 'not loaded'} ({ext['reason']})")
    if ext["build"]:
        b = ext["build"]
        print(f"  built for torch {b.get('torch_version')}, CUDA kernels {b.get('with_cuda')} "
              f"(arches {b.get('cuda_architectures') or '-'})")
    width = max(len(op) for op in info["ops"])
    for op, row in info["ops"].items():
        print(f"  {op:<{width}}  cpu: {row['cpu']}")
        print(f"  {'':<{width}}  cuda: {row['cuda']}")
    return 0


def _cmd_demo(args) -> int:
    import torch

    import satclip

    torch.manual_seed(0)
    lons = torch.arange(-180 + args.step / 2, 180, args.step, dtype=torch.float64)
    lats = torch.arange(-90 + args.step / 2, 90, args.step, dtype=torch.float64)
    grid = torch.cartesian_prod(lons, lats)
    enc = satclip.LocationEncoder(legendre_polys=args.legendre_polys).double().eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        emb = enc(grid)
    dt = time.perf_counter() - t0
    ops = satclip.backend_info()["ops"]
    print(f"embedded a {args.step} deg global grid: {grid.shape[0]} points -> {tuple(emb.shape)} "
          f"({emb.dtype}) in {dt:.3f} s ({grid.shape[0] / dt:,.0f} points/s)")
    print("freshly initialised encoder: L=%d, hidden 512, 2 sine layers, output 256" % args.legendre_polys)
    print(f"backend (cpu): {ops['location_encoder_forward']['cpu']}")
    print(f"embedding stats: mean {emb.mean():.4f}, std {emb.std():.4f}, finite {bool(torch.isfinite(emb).all())}")
    if args.out:
        import numpy as np

        np.save(args.out, emb.numpy())
        print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="satclip", description="SatCLIP location encoders")
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("info", help="which backend each op uses, and why")
    pi.add_argument("--json", action="store_true", help="print the report as JSON")
    pi.set_defaults(fn=_cmd_info)
    pd = sub.add_parser("demo", help="embed a global grid with a freshly initialised encoder")
    pd.add_argument("--step", type=float, default=2.0, help="grid step in degrees (default 2)")
    pd.add_argument("--legendre-polys", type=int, default=10, help="SH degree count L (default 10)")
    pd.add_argument("--out", help="optional .npy file for the embeddings")
    pd.set_defaults(fn=_cmd_demo)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())

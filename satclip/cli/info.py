"""``satclip info``: which implementation each op uses on CPU and CUDA, and why."""

from __future__ import annotations

import argparse
import json

HELP = "which backend each op uses, and why"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    from .._version import __version__
    from ..ops import backend_info

    info = backend_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    ext = info["extension"]
    print(f"satclip {__version__}, torch {info['torch']}, CUDA device: {info['cuda_available']}")
    print("compiled extension: loaded" if ext["loaded"] else f"compiled extension: not loaded ({ext['reason']})")
    if ext["build"]:
        b = ext["build"]
        print(f"  LibTorch stable ABI, loads in torch >= {b.get('stable_abi_target')} (built with torch "
              f"{b.get('torch_version')}); running torch {info['torch']}")
        print(f"  CUDA kernels: {'loaded' if ext['cuda_loaded'] else 'not loaded (' + ext['cuda_reason'] + ')'}"
              f" (built for CUDA {b.get('torch_cuda_version') or '-'}, arches {b.get('cuda_architectures') or '-'})")
    width = max(len(op) for op in info["ops"])
    for op, row in info["ops"].items():
        print(f"  {op:<{width}}  cpu: {row['cpu']}")
        print(f"  {'':<{width}}  cuda: {row['cuda']}")
    print(f"CPU precision='bf16': {info['cpu_bf16']}")
    print(f"CPU precision='tf32': {info['cpu_tf32']}")
    if info["cuda_fused"] is not None:
        print(f"CUDA encoder, fused kernels or cuBLAS per layer (SATCLIP_CUDA_FUSED): {info['cuda_fused']}")
    print("switches (environment; README, \"Switches\"): "
          + ", ".join(f"{k}={v}" for k, v in info["switches"].items()))
    return 0

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
        print(f"  built for torch {b.get('torch_version')}, CUDA kernels {b.get('with_cuda')} "
              f"(arches {b.get('cuda_architectures') or '-'})")
        if b.get("with_cuda") in (True, "ON", "TRUE", "1"):
            # aten::mm with out_dtype: bf16 x bf16 -> float32 GEMMs; without it the bf16 mode's
            # cuBLAS GEMMs run in TF32 on bf16-rounded operands (same values, other speed)
            print(f"  bf16 GEMMs with float32 output (aten::mm out_dtype): {b.get('bf16_gemm_out_float32')}")
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

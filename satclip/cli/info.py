"""``satclip info``: which implementation each op uses on CPU and CUDA, and why; ``satclip info
OUT``: what an embedding output is (its STAC Collection and Item)."""

from __future__ import annotations

import argparse
import json

HELP = "which backend each op uses, and why; with OUT, what an embedding output is (its STAC)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", nargs="?", help="an output of satclip embed: print its STAC Collection and Item")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def describe_output(out: str, as_json: bool) -> int:
    from ..embedding.products import read_stac
    from ..embedding.reader import manifest_of

    try:
        man = manifest_of(out)
        collection, item = read_stac(out)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"satclip info: {exc}") from None
    if as_json:
        print(json.dumps({"collection": collection, "item": item}, indent=1))
        return 0
    rows = sum(r["rows"] for r in man.get("shards", {}).values())
    print(f"{out}: {'complete' if man.get('complete') else 'incomplete'}, {rows:,} rows, {man['format']}, "
          f"{man['dtype']} (STAC: {item['assets']['embeddings']['href']} from the run state's stac/ folder)")
    print(f"  {collection['title']}")
    for key in ("emb:type", "emb:dimensions", "data_type", "gsd", "license"):
        if key in collection:
            print(f"  {key}: {collection[key]}")
    for link in collection["links"]:
        if link["rel"].startswith("emb:"):
            print(f"  {link['rel']}: {link['href']} ({link.get('title', '')})")
    for key, value in item["properties"].items():
        print(f"  {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    print(f"  bbox: {item['bbox']}")
    return 0


def run(args) -> int:
    if args.out is not None:
        return describe_output(args.out, args.json)
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
    print("switches (environment; docs: precision modes, \"Switches\"): "
          + ", ".join(f"{k}={v}" for k, v in info["switches"].items()))
    return 0

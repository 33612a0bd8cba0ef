"""Command line: ``satclip info | demo | train | embed | evaluate``."""

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
    if info["cuda_fused"] is not None:
        print(f"CUDA encoder, fused kernels or cuBLAS per layer (SATCLIP_CUDA_FUSED): {info['cuda_fused']}")
    return 0


def _make_source(args):
    from . import _sources as S

    given = [a for a in ("points", "grid", "healpix", "h3") if getattr(args, a) is not None]
    if len(given) != 1:
        raise SystemExit("satclip embed: give exactly one of --points, --grid, --healpix, --h3")
    if args.land_only and args.grid is None:
        raise SystemExit("satclip embed: --land-only applies to --grid")
    if args.batch_size < 1:
        raise SystemExit(f"satclip embed: --batch-size must be >= 1, got {args.batch_size}")
    kw = {"chunk_size": args.batch_size}
    if args.points is not None:
        return S.TableSource(args.points, args.lon_col, args.lat_col, args.id_col, **kw)
    if args.grid is not None:
        return S.GridSource(args.grid, land_only=args.land_only, **kw)
    if args.healpix is not None:
        return S.HealpixSource(args.healpix, nest=args.nest, **kw)
    return S.H3Source(args.h3, **kw)


def _cmd_embed(args) -> int:
    import torch

    import satclip
    from . import functional as F
    from ._runner import run_embedding

    try:
        source = _make_source(args)
        dtype = torch.float64 if args.model_dtype == "float64" else torch.float32
        if args.checkpoint is None:
            enc = satclip.default_model(device=args.device, dtype=dtype)
            name = "the bundled default model (Blue Marble demo, see satclip/data/DEFAULT_MODEL.md; give --checkpoint " \
                   "for a released SatCLIP model)"
        else:
            enc = satclip.load(args.checkpoint, device=args.device, dtype=dtype)
            name = args.checkpoint
        enc.precision = F.check_precision(args.precision, dtype)
        quiet = args.quiet or not sys.stderr.isatty()
        if not args.quiet:
            print(f"satclip embed: model {name} (L={enc.legendre_polys}, {enc.harmonics}), "
                  f"{len(source):,} points in {source.num_chunks} chunks -> {args.out} ({args.format}, {args.dtype})",
                  file=sys.stderr)
        t0 = time.perf_counter()
        run_embedding(enc, source, args.out, fmt=args.format, out_dtype=args.dtype, device=args.device,
                      overwrite=args.overwrite, progress=not quiet)
        if not args.quiet:
            print(f"satclip embed: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        if args.preview:
            from ._preview import render_preview
            png = render_preview(args.out, args.preview)
            if not args.quiet:
                print(f"satclip embed: wrote {png}", file=sys.stderr)
    except (ValueError, FileExistsError, FileNotFoundError, ImportError, TypeError) as exc:
        raise SystemExit(f"satclip embed: {exc}") from None
    return 0


def _cmd_evaluate(args) -> int:
    from ._evaluate import run_cli
    from ._probes import PROBES, SPLITS
    from ._tasks import TASKS

    tasks = tuple(args.tasks.split(",")) if args.tasks else TASKS
    probes = tuple(args.probes.split(",")) if args.probes else PROBES
    splits = tuple(args.splits.split(",")) if args.splits else SPLITS
    for value, allowed, what in ((tasks, TASKS, "task"), (probes, PROBES, "probe"), (splits, SPLITS, "split")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise SystemExit(f"satclip evaluate: unknown {what} {bad}; expected among {list(allowed)}")
    if args.seeds < 1:
        raise SystemExit("satclip evaluate: --seeds must be >= 1")
    try:
        table = run_cli(args.checkpoint, tasks, args.out, args.seeds, args.legendre_polys, probes, splits, args.quiet)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"satclip evaluate: {exc}") from None
    print(table)
    if args.out:
        print(f"wrote {args.out}/evaluation.md, evaluation.json, evaluation.png")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="satclip", description="SatCLIP location encoders")
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("info", help="which backend each op uses, and why")
    pi.add_argument("--json", action="store_true", help="print the report as JSON")
    pi.set_defaults(fn=_cmd_info)
    from . import _train_cli
    pd = sub.add_parser("demo", help="train a small model on Blue Marble patches, embed a grid, draw the map",
                        description=_train_cli.cmd_demo.__doc__)
    _train_cli.add_demo_arguments(pd)
    pd.set_defaults(fn=_train_cli.cmd_demo)
    pt = sub.add_parser("train", help="SatCLIP contrastive training (Lightning; S2-100K or the Blue Marble demo)",
                        description="Train or resume a SatCLIP model. Options come from --config (JSON/YAML) "
                                    "and flags; defaults follow the original recipe (AdamW, lr 1e-4, weight "
                                    "decay 0.01). Checkpoints have the original SatCLIP layout.")
    _train_cli.add_train_arguments(pt)
    pt.set_defaults(fn=_train_cli.cmd_train)
    pe = sub.add_parser("embed", help="embed a table or a global grid to Parquet/Zarr/npy (resumable)",
                        description="Embed points (lon, lat in degrees) chunk by chunk into an output directory. "
                                    "A killed run resumes with the same command; an existing output is only "
                                    "replaced with --overwrite.")
    pe.add_argument("--checkpoint", help="SatCLIP .ckpt, satclip .safetensors export, or Hugging Face repo id "
                                         "(default: the bundled default model, a small Blue Marble demo model)")
    src = pe.add_argument_group("input (exactly one)")
    src.add_argument("--points", help="Parquet/GeoParquet/CSV file with lon/lat columns or point geometry")
    src.add_argument("--grid", type=float, metavar="STEP_DEG", help="regular lat/lon grid of cell centres")
    src.add_argument("--healpix", type=int, metavar="NSIDE", help="HEALPix pixel centres (needs healpy)")
    src.add_argument("--h3", type=int, metavar="RES", help="H3 cell centres (needs h3)")
    pe.add_argument("--land-only", action="store_true", help="with --grid: land cells only (global-land-mask)")
    pe.add_argument("--nest", action="store_true", help="with --healpix: nested ordering (default ring)")
    pe.add_argument("--lon-col", help="longitude column of --points (default: lon/longitude/x)")
    pe.add_argument("--lat-col", help="latitude column of --points (default: lat/latitude/y)")
    pe.add_argument("--id-col", help="integer id column of --points to copy (default: row number)")
    pe.add_argument("--out", required=True, help="output directory")
    pe.add_argument("--format", choices=["parquet", "zarr", "npy"], default="parquet", help="default parquet")
    pe.add_argument("--dtype", choices=["float32", "float16", "int8"], default="float32",
                    help="embedding dtype on disk (int8: codes + one float32 scale per point)")
    pe.add_argument("--model-dtype", choices=["float32", "float64"], default="float32",
                    help="precision of the encoder (float64 = the original's; float32 is faster)")
    pe.add_argument("--precision", choices=["float32", "tf32", "bf16"], default="float32",
                    help="GEMM operand precision with --model-dtype float32: float32 (exact, default), tf32 or "
                         "bf16 (tensor cores on GPU; embedding error below 1e-2, see README)")
    pe.add_argument("--batch-size", type=int, default=65536, help="points per chunk (default 65536)")
    pe.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    pe.add_argument("--overwrite", action="store_true", help="replace an existing output instead of resuming")
    pe.add_argument("--preview", metavar="PNG", help="also draw the first 3 principal components as RGB on a map")
    pe.add_argument("--quiet", action="store_true", help="no messages and no progress bar")
    pe.set_defaults(fn=_cmd_embed)
    pv = sub.add_parser("evaluate", help="linear and MLP probes on offline tasks, with baselines",
                        description="Frozen embeddings + probes on air temperature, land/sea, Koppen class, "
                                    "elevation and population, against raw lon/lat, raw SH features and a "
                                    "randomly initialised encoder.")
    pv.add_argument("--checkpoint", help="encoder to evaluate (default: baselines only)")
    pv.add_argument("--tasks", help="comma-separated subset of air_temp,land_sea,koppen,elevation,population")
    pv.add_argument("--probes", help="comma-separated subset of linear,mlp (default both)")
    pv.add_argument("--splits", help="comma-separated subset of random,spatial (default both)")
    pv.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    pv.add_argument("--legendre-polys", type=int, default=10, help="L of the baselines without --checkpoint")
    pv.add_argument("--out", help="directory for evaluation.md/.json/.png")
    pv.add_argument("--quiet", action="store_true", help="no per-fit lines")
    pv.set_defaults(fn=_cmd_evaluate)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())

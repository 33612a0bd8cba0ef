"""``satclip embed``: a table or a global grid -> Parquet/Zarr/npy embeddings, resumable."""

from __future__ import annotations

import argparse
import sys
import time

from ..embedding import formats
from ..embedding.stored import INT8_FORMULA, OUT_DTYPES
from ..options import FACTORISE, PRECISIONS

DEFAULT_CHUNK_POINTS = 65536

HELP = "embed a table or a global grid to Parquet/Zarr/npy (resumable)"
DESCRIPTION = ("Embed points (lon, lat in degrees) chunk by chunk into an output directory. A killed run resumes "
               "with the same command; an existing output is only replaced with --overwrite.")


def add_arguments(pe: argparse.ArgumentParser) -> None:
    pe.add_argument("--checkpoint", help="SatCLIP .ckpt, satclip .safetensors export, or Hugging Face repo id "
                                         "(default: the bundled default model, a small Blue Marble demo model)")
    src = pe.add_argument_group("input (exactly one)")
    src.add_argument("--points", help="Parquet/GeoParquet or text table (.csv, .tsv; separated by comma, semicolon, tab or pipe) "
                                      "with lon/lat columns or point geometry")
    src.add_argument("--grid", type=float, metavar="STEP_DEG", help="regular lat/lon grid of cell centres")
    src.add_argument("--healpix", type=int, metavar="NSIDE", help="HEALPix pixel centres (needs healpy)")
    src.add_argument("--h3", type=int, metavar="RES", help="H3 cell centres (needs h3)")
    pe.add_argument("--land-only", action="store_true", help="with --grid: land cells only (global-land-mask)")
    pe.add_argument("--nest", action="store_true", help="with --healpix: nested ordering (default ring)")
    pe.add_argument("--lon-col", help="longitude column of --points (default: lon/longitude/x)")
    pe.add_argument("--lat-col", help="latitude column of --points (default: lat/latitude/y)")
    pe.add_argument("--id-col", help="id column of --points, copied as it is (any type; default: row number)")
    pe.add_argument("--sort", choices=["hilbert"], default=None,
                    help="with --points: write the rows in Hilbert-curve order of their coordinates (nearby points "
                         "in the same shard: bbox filters skip more; the input is held in memory; ids stay)")
    pe.add_argument("--sep", help="separator of a text --points file (default: read off its header line: the most "
                                  "frequent of comma, semicolon, tab and pipe; tab for .tsv)")
    pe.add_argument("--on-invalid", choices=["fail", "skip"], default="fail",
                    help="--points rows with NaN/inf coordinates or a latitude beyond +-90: stop naming the row (fail, default) "
                         "or leave them out, each listed in the manifest (skip; Parquet output)")
    pe.add_argument("--keep-cols", metavar="A,B|all", help="columns of --points to carry to the output beside the "
                                                           "embedding (comma-separated, or 'all'; Parquet output)")
    pe.add_argument("--out", required=True, help="output directory (it appears when the run completes; until "
                                                   "then the rows are in its run state, see --publish-partial)")
    pe.add_argument("--format", choices=formats.names(), default=formats.names()[0],
                    help="; ".join(f"{f.name}: {f.help}" for f in formats.all_formats()) + f" (default {formats.names()[0]})")
    pe.add_argument("--dtype", choices=OUT_DTYPES, default="float32",
                    help="embedding dtype on disk (int8: codes + one float32 scale per point, "
                         f"{INT8_FORMULA})")
    pe.add_argument("--compress", choices=["none", "zstd"], default=None, dest="compression",
                    help="compress the embedding (Parquet: ZSTD pages; Zarr: Blosc-Zstd in 64 x 64-cell inner "
                         "chunks, one shard per chunk; COG: ZSTD with a predictor). Default: zstd for cog (files "
                         "0.24-0.62 of the size at -1%% to +7%% writer time), none for the others (float "
                         "embeddings shrink by 14-26%% there at 14-24%% more writer time for Parquet, 3-5x for "
                         "Zarr; int8 Parquet is dictionary-encoded to about a byte per value either way)")
    pe.add_argument("--model-dtype", choices=["float32", "float64"], default="float32",
                    help="precision of the encoder (float64 = the original's; float32 is faster)")
    pe.add_argument("--factorise", choices=FACTORISE, default="auto",
                    help="first layer factorised over latitude rows for points that share latitudes (grids, "
                         "HEALPix rings; same numbers to float rounding; faster from L = 20 on; docs: performance): "
                         "auto (default: L >= 20 and at most one latitude per 32 points in a chunk), always or never")
    pe.add_argument("--precision", choices=PRECISIONS, default="float32",
                    help="GEMM operand precision with --model-dtype float32: float32 (exact, default), tf32, "
                         "bf16 or float16 (tensor cores on GPU; embedding error below 1e-2; docs: precision modes)")
    pe.add_argument("--chunk-points", type=int, default=None,
                    help="points per chunk: what is encoded, written as one shard and resumed (default 65536)")
    pe.add_argument("--batch-size", type=int, default=None, dest="batch_size",
                    help="deprecated name of --chunk-points")
    pe.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    pe.add_argument("--overwrite", action="store_true", help="replace an existing output instead of resuming")
    pe.add_argument("--writers", type=int, default=None, help="writer threads (default: one per core, at most 4 "
                                                              "beside a CPU encoder, 8 beside a GPU)")
    pe.add_argument("--publish-partial", action="store_true",
                    help="write the rows into --out as they land, so readers see an unfinished output grow (default: "
                         "--out appears, whole, when the last chunk is written)")
    pe.add_argument("--verify", action="store_true", help="read back every chunk already written against its "
                                                           "checksum and redo damaged ones (default: sizes only)")
    pe.add_argument("--preview", metavar="PNG", help="also draw the first 3 principal components as RGB on a map")
    pe.add_argument("--quiet", action="store_true", help="no messages and no progress bar")
    ray = pe.add_argument_group("Ray (optional: pip install 'ray[data]')")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="encode and write the chunks on Ray encoder actors: a cluster's ADDRESS ('auto', "
                          "'ray://host:10001') or, alone, a local Ray instance; same output as without it")
    ray.add_argument("--ray-actors", type=int, default=None, help="encoder actors (default: one per GPU, else 2)")
    ray.add_argument("--ray-cpus-per-actor", type=float, default=1, help="CPUs each actor reserves (default 1)")
    ray.add_argument("--ray-threads", type=int, default=None,
                     help="torch threads per CPU actor (default: this machine's count, which keeps the rows "
                          "bit-identical to a local run here)")


def make_source(args):
    """The point source the flags describe (exactly one of --points, --grid, --healpix, --h3)."""
    from ..embedding import sources as S

    given = [a for a in ("points", "grid", "healpix", "h3") if getattr(args, a) is not None]
    if len(given) != 1:
        raise SystemExit("satclip embed: give exactly one of --points, --grid, --healpix, --h3")
    if args.land_only and args.grid is None:
        raise SystemExit("satclip embed: --land-only applies to --grid")
    kw = {"chunk_points": chunk_points(args)}
    if args.points is None:
        for flag in ("lon_col", "lat_col", "id_col", "keep_cols", "sep", "sort"):
            if getattr(args, flag) is not None:
                raise SystemExit(f"satclip embed: --{flag.replace('_', '-')} applies to --points")
        if args.on_invalid != "fail":
            raise SystemExit("satclip embed: --on-invalid applies to --points")
    if args.nest and args.healpix is None:
        raise SystemExit("satclip embed: --nest applies to --healpix")
    if args.points is not None:
        keep = ["*"] if args.keep_cols == "all" else [c for c in (args.keep_cols or "").split(",") if c]
        source = S.TableSource(args.points, args.lon_col, args.lat_col, args.id_col, keep_cols=keep,
                               on_invalid=args.on_invalid, sep=args.sep, sort=args.sort, **kw)
        if source.left_out and not args.quiet:
            print(f"satclip embed: --keep-cols all: {', '.join(source.left_out)} not carried (the output has its own "
                  "column of that name)", file=sys.stderr)
        return source
    if args.grid is not None:
        return S.GridSource(args.grid, land_only=args.land_only, **kw)
    if args.healpix is not None:
        return S.HealpixSource(args.healpix, nest=args.nest, **kw)
    return S.H3Source(args.h3, **kw)


def chunk_points(args) -> int:
    """``--chunk-points`` (or its old name ``--batch-size``, with a warning), checked."""
    if args.batch_size is not None:
        if args.chunk_points is not None:
            raise SystemExit("satclip embed: give --chunk-points only (--batch-size is its deprecated name)")
        print("satclip embed: --batch-size is deprecated and will be removed after satclip 0.2; use --chunk-points",
              file=sys.stderr)
    n = args.chunk_points if args.chunk_points is not None else args.batch_size
    n = DEFAULT_CHUNK_POINTS if n is None else n
    if n < 1:
        raise SystemExit(f"satclip embed: --chunk-points must be >= 1, got {n}")
    return n


def _needs(module: str, why: str) -> None:
    import importlib.util
    if importlib.util.find_spec(module) is None:
        raise SystemExit(f"satclip embed: {why} needs `pip install {module}` (nothing was run)")


def _check_dependencies(args) -> None:
    """Every optional package the run will need, before any work starts."""
    try:
        formats.get(args.format).check_available()
    except ImportError as exc:
        raise SystemExit(f"satclip embed: {exc} (nothing was run)") from None
    if args.points:
        _needs("pyarrow", "Parquet or CSV input")
    if args.preview:
        _needs("matplotlib", "--preview")
    if args.ray is not None:
        _needs("ray", "--ray")


def run(args) -> int:
    import torch

    from ..checkpoint import default_model, fused_pair, load
    from ..options import EncodeOptions
    from ..embedding.errors import SettingError
    from ..embedding.runner import DiskFull, EmbeddingInterrupted, run_embedding
    from ..embedding.state import OutputLocked

    say = (lambda msg: None) if args.quiet else (lambda msg: print(f"satclip embed: {msg}", file=sys.stderr))
    _check_dependencies(args)
    _check_device(args.device)
    try:
        source = make_source(args)
        dtype = torch.float64 if args.model_dtype == "float64" else torch.float32
        options = EncodeOptions(precision=args.precision, factorise=args.factorise)
        if args.checkpoint is None:
            enc = default_model(device=args.device, dtype=dtype)
            name = "the bundled default model (Blue Marble demo, see satclip/data/DEFAULT_MODEL.md; give --checkpoint " \
                   "for a released SatCLIP model)"
        else:
            enc = load(args.checkpoint, device=args.device, dtype=dtype)
            name = args.checkpoint
        cfg = enc.config()
        if args.precision != "float32" and not fused_pair(cfg):
            raise ValueError(f"--precision {args.precision} applies to spherical harmonics + SIREN encoders (the fused "
                             f"kernels); this checkpoint is {cfg['le_type']} + {cfg['pe_type']} "
                             f"({cfg['harmonics_calculation']}): use --precision float32")
        if hasattr(enc, "options"):  # spherical harmonics + SIREN encoders (the fused kernels)
            enc.options = options
            enc.plan()  # resolved and checked once (on the model's device); the manifest records it
        n = source.num_chunks
        kind = (f"L={cfg['legendre_polys']}, {cfg['harmonics_calculation']}" if cfg["le_type"] == "sphericalharmonics"
                else cfg["le_type"]) + f", {cfg['pe_type']}"
        say(f"model {name} ({kind}), {len(source):,} points in {n} "
            f"chunk{'s' * (n != 1)} -> {args.out} ({args.format}, {args.dtype})")
        t0 = time.perf_counter()
        executor = None
        if args.ray is not None:
            from ..embedding.ray_adapter import RayExecutor
            executor = RayExecutor(args.ray or None, actors=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor,
                                   threads=args.ray_threads)
        elif args.ray_actors is not None or args.ray_threads is not None:
            raise ValueError("--ray-actors and --ray-threads apply to --ray")
        run_embedding(enc, source, args.out, fmt=args.format, out_dtype=args.dtype, device=args.device,
                      overwrite=args.overwrite, progress=False if args.quiet else None,
                      verify=args.verify, log=say, executor=executor, writers=args.writers,
                      publish_partial=args.publish_partial, compression=args.compression)
        dt = time.perf_counter() - t0
        say(f"done in {dt:.1f} s ({len(source) / dt:,.0f} points/s overall)")
        if args.preview:
            from ..embedding.preview import render_preview
            say(f"wrote {render_preview(args.out, args.preview)}")
    except EmbeddingInterrupted as exc:
        print(f"satclip embed: {exc}", file=sys.stderr)
        return 130
    except DiskFull as exc:
        raise SystemExit(f"satclip embed: {exc.strerror}") from None
    except SettingError as exc:
        raise SystemExit(f"satclip embed: {exc.cli()}") from None
    except (ValueError, FileExistsError, FileNotFoundError, ImportError, TypeError, OutputLocked) as exc:
        raise SystemExit(f"satclip embed: {exc}") from None
    except OSError as exc:  # no permission, a read-only file system, ...: the path and the reason
        raise SystemExit(f"satclip embed: {os_words(exc, args.out)}") from None
    return 0


def os_words(exc: OSError, out) -> str:
    """An OSError as one sentence naming the file and what to do."""
    import errno
    where = exc.filename or out
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write {where}; choose an --out you can write to (nothing was written)"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system; choose an --out on writable storage (nothing was written)"
    return f"{where}: {exc.strerror or exc}"


def _check_device(device) -> None:
    """``--device``: a device torch knows and this machine has."""
    if device is None:
        return
    import torch
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SystemExit(f"satclip embed: --device {device!r} is not a device torch knows; use cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise SystemExit(f"satclip embed: --device {device} but torch sees no CUDA device here (torch "
                         f"{torch.__version__}, {build}); use --device cpu, or run where a GPU is")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SystemExit(f"satclip embed: --device {device}: this machine has {torch.cuda.device_count()} CUDA "
                         "device(s)")
    if dev.type not in ("cpu", "cuda"):
        raise SystemExit(f"satclip embed: --device {device}: satclip runs on cpu or cuda")


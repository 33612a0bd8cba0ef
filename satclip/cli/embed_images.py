"""``satclip embed-images``: a folder of GeoTIFF patches (or a table of their paths) -> image
embeddings in Parquet/Zarr, with the same runner, manifest and resume as ``satclip embed``."""

from __future__ import annotations

import argparse
import sys
import time

from ..embedding import formats
from ..embedding.stored import OUT_DTYPES

HELP = "embed GeoTIFF image patches with a model's image encoder (resumable)"
DESCRIPTION = ("Embed image patches (a folder of .tif files, e.g. S2-100K's images/, or a Parquet/CSV table with a "
               "'path' column) with the image encoder of a full SatCLIP checkpoint. Each row holds the file's path, "
               "the patch centre lon/lat when the file is georeferenced, and the embedding. A killed run resumes with "
               "the same command.")


def add_image_input(p: argparse.ArgumentParser) -> None:
    """The options that say which images and how to read them (shared with ``satclip locate``)."""
    p.add_argument("--checkpoint", default=None, help="full SatCLIP .ckpt (original or from satclip train) with its "
                                                      "image encoder, or a Hugging Face repo id (default: the bundled "
                                                      "demo model: RGB, 32 x 32 px Blue Marble patches)")
    p.add_argument("--images", required=True, help="folder of .tif/.tiff patches, or a .parquet/.csv with a 'path' "
                                                   "column")
    p.add_argument("--crop", type=int, default=None, help="centre crop in pixels (default: the model's training "
                                                          "resolution for CLIP encoders, else 224)")
    p.add_argument("--scale", type=float, default=1e-4, help="pixel value factor when the file has the model's "
                                                             "channel count (default 1e-4: Sentinel-2 digital "
                                                             "numbers; 12-band L2A files always use 1e-4)")
    p.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                   help="an unreadable file, wrong band count or too small image: stop (default) or leave it out "
                        "(named in the log and the manifest)")
    p.add_argument("--batch-size", type=int, default=64, help="images per chunk (default 64)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no messages and no progress bar")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_image_input(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", choices=formats.names(), default=formats.names()[0],
                   help=f"default {formats.names()[0]} (the formats without skipped rows keep one row per file, so "
                        "--on-error fail)")
    p.add_argument("--dtype", choices=OUT_DTYPES, default="float32", help="stored values")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output instead of resuming")
    p.add_argument("--verify", action="store_true", help="read back every chunk already written against its checksum")


def image_source(args, model, say):
    from ..imagery.images import ImageFileSource, image_crop

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    crop = args.crop or image_crop(model)
    return ImageFileSource(args.images, model.in_channels, crop, scale=args.scale, on_error=args.on_error,
                           chunk_points=args.batch_size, log=say)


def load_full_model(args):
    from ..imagery.loading import load_model
    return load_model(args.checkpoint, device=args.device)


def run(args) -> int:
    from ..embedding.runner import DiskFull, EmbeddingInterrupted, run_embedding
    from ..embedding.state import OutputLocked, state_dir
    from ..imagery.images import ImageEmbedder, ImageError
    from ..embedding.errors import SettingError

    say = (lambda msg: None) if args.quiet else (lambda msg: print(f"satclip embed-images: {msg}", file=sys.stderr))
    try:
        model = load_full_model(args)
        source = image_source(args, model, say)
        say(f"model {args.checkpoint or 'bundled (Blue Marble demo)'} ({type(model.visual).__name__}, {model.in_channels} channels, crop "
            f"{source.crop}), {len(source):,} images in {source.num_chunks} "
            f"chunk{'s' * (source.num_chunks != 1)} -> {args.out}")
        t0 = time.perf_counter()
        run_embedding(ImageEmbedder(model), source, args.out, fmt=args.format, out_dtype=args.dtype,
                      device=args.device, overwrite=args.overwrite,
                      progress=not (args.quiet or not sys.stderr.isatty()), verify=args.verify, log=say)
        source.write_inputs(args.out)
        say(f"done in {time.perf_counter() - t0:.1f} s (row i is line i of {state_dir(args.out) / 'inputs.txt'})")
    except EmbeddingInterrupted as exc:
        print(f"satclip embed-images: {exc}", file=sys.stderr)
        return 130
    except DiskFull as exc:
        raise SystemExit(f"satclip embed-images: {exc.strerror}") from None
    except SettingError as exc:
        raise SystemExit(f"satclip embed-images: {exc.cli()}") from None
    except (ImageError, ValueError, FileExistsError, FileNotFoundError, ImportError, TypeError, OutputLocked) as exc:
        raise SystemExit(f"satclip embed-images: {exc}") from None
    return 0

"""``satclip locate``: the likely locations of image patches, by cosine similarity between
each image's embedding and a gallery of location embeddings of the same model."""

from __future__ import annotations

import argparse
import sys
import time

HELP = "find the likely locations of image patches (top k from a location gallery)"
DESCRIPTION = ("For each image (a folder of GeoTIFF patches or a table of their paths), the k gallery points whose "
               "location embedding is most similar to the image's embedding, with the cosine similarity and, when the "
               "file is georeferenced, the great-circle distance to its true centre. The gallery is a grid or a point "
               "table embedded on the fly with the checkpoint's location encoder, or a satclip embed output of the "
               "same checkpoint.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .embed_images import add_image_input

    add_image_input(p)
    g = p.add_argument_group("gallery (exactly one)")
    g.add_argument("--gallery-grid", type=float, metavar="STEP_DEG", help="grid cell centres (1 deg: 64,800 points)")
    g.add_argument("--gallery-points", metavar="TABLE", help="Parquet/CSV table of lon/lat candidate points")
    g.add_argument("--gallery-embeddings", metavar="DIR", help="a satclip embed output made with this checkpoint")
    p.add_argument("--land-only", action="store_true", help="with --gallery-grid: land cells only")
    p.add_argument("--k", type=int, default=5, help="locations per image (default 5)")
    p.add_argument("--out", help="write the results (.parquet or .csv): one row per image and rank")


def _gallery(args, model):
    from ..embedding.sources import TableSource
    from ..imagery.locate import Gallery

    given = [a for a in ("gallery_grid", "gallery_points", "gallery_embeddings") if getattr(args, a) is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --gallery-grid, --gallery-points, --gallery-embeddings")
    if args.land_only and args.gallery_grid is None:
        raise ValueError("--land-only applies to --gallery-grid")
    if args.gallery_grid is not None:
        return Gallery.from_grid(model, args.gallery_grid, land_only=args.land_only)
    if args.gallery_embeddings is not None:
        return Gallery.from_output(args.gallery_embeddings, model)
    import numpy as np
    chunks = list(TableSource(args.gallery_points).chunks())
    lonlat = np.stack([np.concatenate([c.lon for c in chunks]), np.concatenate([c.lat for c in chunks])], 1)
    return Gallery.from_points(model, lonlat)


def _write(path: str, rows: dict) -> None:
    import pyarrow as pa

    table = pa.table(rows)
    if path.endswith(".csv"):
        import pyarrow.csv as pcsv
        pcsv.write_csv(table, path)
    elif path.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq
        pq.write_table(table, path)
    else:
        raise ValueError(f"--out {path}: expected a .parquet or .csv file name")


def run(args) -> int:
    import numpy as np

    from ..imagery.images import ImageError
    from ..imagery.locate import locate
    from .embed_images import image_source, load_full_model

    say = (lambda msg: None) if args.quiet else (lambda msg: print(f"satclip locate: {msg}", file=sys.stderr))
    try:
        if args.k < 1:
            raise ValueError(f"--k must be >= 1, got {args.k}")
        if args.out and not args.out.endswith((".csv", ".parquet", ".pq")):
            raise ValueError(f"--out {args.out}: expected a .parquet or .csv file name")
        t0 = time.perf_counter()
        model = load_full_model(args)
        gallery = _gallery(args, model)
        source = image_source(args, model, say)
        say(f"{len(source):,} images against a gallery of {len(gallery):,} points")
        cols = {k: [] for k in ("path", "rank", "lon", "lat", "similarity", "true_lon", "true_lat", "distance_km")}
        top1 = []
        for chunk in source.chunks():
            if not len(chunk.ids):
                continue
            true = np.stack([chunk.lon, chunk.lat], 1)
            res = locate(model, chunk.payload, gallery, args.k, true_lonlat=true)
            k = res.index.shape[1]
            paths = chunk.extra["path"].to_pylist()
            for i in range(len(paths)):
                for r in range(k):
                    for name, value in (("path", paths[i]), ("rank", r + 1), ("lon", res.lonlat[i, r, 0]),
                                        ("lat", res.lonlat[i, r, 1]), ("similarity", res.similarity[i, r]),
                                        ("true_lon", true[i, 0]), ("true_lat", true[i, 1]),
                                        ("distance_km", res.distance_km[i, r])):
                        cols[name].append(value)
                top1.append(res.distance_km[i, 0])
        if args.out:
            _write(args.out, {k: (np.asarray(v, np.float64) if k not in ("path", "rank") else v) for k, v in cols.items()})
            say(f"wrote {args.out}")
        d = np.asarray(top1, np.float64)
        d = d[np.isfinite(d)]
        msg = f"{len(top1):,} images located in {time.perf_counter() - t0:.1f} s"
        if len(d):
            p25, p50, p75 = np.percentile(d, [25, 50, 75])
            msg += (f"; top-1 error to the true centre ({len(d):,} georeferenced): median {p50:,.0f} km "
                    f"(25%: {p25:,.0f}, 75%: {p75:,.0f})")
        print(msg)
    except (ImageError, ValueError, FileNotFoundError, ImportError, TypeError) as exc:
        raise SystemExit(f"satclip locate: {exc}") from None
    return 0

"""Image-to-location retrieval measured on held-out Blue Marble patches.

The patches of a ``satclip train --data bluemarble`` run's validation split (same size, patch,
seed and fraction: never seen in training) are located with ``satclip.locate`` against a grid
gallery embedded by the same checkpoint; the top-1 great-circle error is compared with random
guessing (a uniformly random gallery point per image) and with the grid's own floor (the
nearest gallery point). Writes ``localisation.md`` and ``localisation.json`` to ``--out``.

    python benchmarks/localisation.py --checkpoint run/checkpoints/last.ckpt --out benchmarks/results/localisation
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="full checkpoint of a Blue Marble training run (default: "
                                                       "the bundled model)")
    ap.add_argument("--bluemarble-size", type=int, default=16384)
    ap.add_argument("--patch-px", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--gallery-step", type=float, default=1.0)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from satclip.imagery import Gallery, load_model, locate
    from satclip.imagery.locate import error_summary as _stats, great_circle_km
    from satclip.model.bands import model_bands
    from satclip.training.heldout import bluemarble_heldout

    t0 = time.perf_counter()
    model = load_model(args.checkpoint)
    images, true = bluemarble_heldout(size=args.bluemarble_size, patch_px=args.patch_px, seed=args.seed,
                                      val_fraction=args.val_fraction, bands=model_bands(model.in_channels))
    gallery = Gallery.from_grid(model, args.gallery_step)
    res = locate(model, images, gallery, args.k, true_lonlat=true)
    top1 = res.distance_km[:, 0]
    best_of_k = res.distance_km.min(1)
    rng = np.random.default_rng(args.seed)
    random_guess = great_circle_km(true, gallery.lonlat[rng.integers(0, len(gallery), len(true))])
    floor = np.array([great_circle_km(t[None], gallery.lonlat).min() for t in true])
    land = None
    try:
        from global_land_mask import globe
        land = globe.is_land(np.clip(true[:, 1], -89.999, 89.999), true[:, 0])
    except ImportError:
        pass
    result = {"checkpoint": str(args.checkpoint or "bundled"), "images": len(true), "gallery_points": len(gallery),
              "gallery_step_deg": args.gallery_step, "k": args.k, "seconds": round(time.perf_counter() - t0, 1),
              "model_top1": _stats(top1), f"model_best_of_{args.k}": _stats(best_of_k),
              "random_guess": _stats(random_guess), "grid_floor": _stats(floor)}
    if land is not None:
        result["model_top1_land"] = _stats(top1[land])
        result["model_top1_sea"] = _stats(top1[~land])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "localisation.json").write_text(json.dumps(result, indent=1, default=float))
    rows = [("model, top 1", "model_top1"), (f"model, best of top {args.k}", f"model_best_of_{args.k}"),
            ("model, top 1, land patches", "model_top1_land"), ("model, top 1, sea patches", "model_top1_sea"),
            ("random guess (a random gallery point)", "random_guess"), ("grid floor (nearest gallery point)", "grid_floor")]
    lines = [f"# Localisation of {len(true):,} held-out Blue Marble patches", "",
             "`python benchmarks/localisation.py" + (f" --checkpoint {args.checkpoint}" if args.checkpoint else "")
             + f" --gallery-step {args.gallery_step}`"
             f" ({result['seconds']} s; gallery: {len(gallery):,} cell centres of a {args.gallery_step}-degree grid)", "",
             "| guess | median km | 25% | 75% | 90% | within 500 km | within 1000 km | within 2500 km |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, key in rows:
        if key in result:
            s = result[key]
            lines.append(f"| {label} | {s['median_km']:,.0f} | {s['p25_km']:,.0f} | {s['p75_km']:,.0f} | "
                         f"{s['p90_km']:,.0f} | {s['within_500_km']:.1%} | {s['within_1000_km']:.1%} | "
                         f"{s['within_2500_km']:.1%} |")
    (out / "localisation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Distributed embedding with Ray Data (optional: ``pip install "ray[data]"``, imported lazily).

``embed_parquet_with_ray`` reads Parquet points with ``ray.data.read_parquet``, maps batches
through an actor class that loads the encoder once per worker (one GPU per actor where GPUs
exist) and writes Parquet with an ``embedding`` column. The numbers are those of
``satclip.embed`` on the same points; row order follows Ray's, so keep an id column.
"""

from __future__ import annotations

import numpy as np


class EncoderActor:
    """Callable for ``Dataset.map_batches``: loads the encoder once, embeds numpy batches."""

    def __init__(self, checkpoint: str, lon_col: str, lat_col: str, dtype: str, out_dtype: str, device: str):
        import torch

        from ..checkpoint import load

        self.lon_col, self.lat_col, self.out_dtype = lon_col, lat_col, out_dtype
        self.encoder = load(checkpoint, device=device, dtype=getattr(torch, dtype))

    def __call__(self, batch: dict) -> dict:
        from .api import embed

        ll = np.stack([np.asarray(batch[self.lon_col], float), np.asarray(batch[self.lat_col], float)], 1)
        batch["embedding"] = embed(self.encoder, ll, out_dtype=self.out_dtype)
        return batch


def embed_parquet_with_ray(checkpoint, paths, out_dir, *, lon_col: str = "lon", lat_col: str = "lat",
                           batch_size: int = 65536, concurrency: int = 2, dtype: str = "float32",
                           out_dtype: str = "float32", num_gpus: float | None = None,
                           num_cpus: float = 1, num_blocks: int | None = None) -> None:
    """Embeds Parquet points with Ray Data and writes Parquet files to ``out_dir``.

    ``concurrency`` encoder actors, each reserving ``num_cpus`` CPUs and ``num_gpus`` GPUs
    (default: 1 per actor when the cluster has GPUs, else 0). Leave CPUs for Ray's read and
    write tasks: actors that reserve every CPU starve them and the pipeline stalls.
    ``num_blocks`` repartitions the input so that every actor gets work on small inputs.
    """
    try:
        import ray
    except ImportError:
        raise ImportError('the Ray adapter needs `pip install "ray[data]"`') from None
    if not ray.is_initialized():
        ray.init()
    if num_gpus is None:
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    device = "cuda" if num_gpus else "cpu"
    ds = ray.data.read_parquet(paths)
    if num_blocks:
        ds = ds.repartition(num_blocks)
    ds = ds.map_batches(EncoderActor, fn_constructor_args=(str(checkpoint), lon_col, lat_col, dtype, out_dtype, device),
                        batch_size=batch_size, batch_format="numpy", concurrency=concurrency, num_gpus=num_gpus,
                        num_cpus=num_cpus)
    ds.write_parquet(str(out_dir))

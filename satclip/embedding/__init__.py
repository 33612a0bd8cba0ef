"""Embedding at scale: point sources (:mod:`.sources`: tables, grids, HEALPix, H3, arrays) ->
encoder -> output formats (:mod:`.formats`: Parquet, Zarr, npy, one class each in a registry),
streamed chunk by chunk, resumable and committed at the end (:mod:`.runner`, described by an
:class:`.job.EmbeddingJob`, executed here or on Ray: :mod:`.executors`, :mod:`.ray_adapter`);
in-memory ``satclip.embed`` (:mod:`.api`); reading outputs back (:mod:`.reader`); the map preview
(:mod:`.preview`).

May import :mod:`satclip.checkpoint`, :mod:`satclip.nn` and below; not
:mod:`satclip.evaluation`, :mod:`satclip.training` or :mod:`satclip.cli`.
"""

__all__ = ["embed", "run_embedding"]


def __getattr__(name):  # imported when first used: the CLI's argument parser reads the formats without torch
    if name == "embed":
        from .api import embed
        return embed
    if name == "run_embedding":
        from .runner import run_embedding
        return run_embedding
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

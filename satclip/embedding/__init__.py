"""Embedding at scale: point sources (:mod:`.sources`: tables, grids, HEALPix, H3, arrays) ->
encoder -> output formats (:mod:`.formats`: Parquet, Zarr, npy, one class each in a registry),
streamed chunk by chunk, resumable and committed at the end (:mod:`.runner`, described by an
:class:`.job.EmbeddingJob`, executed here or on Ray: :mod:`.executors`, :mod:`.ray_adapter`);
in-memory ``satclip.embed`` (:mod:`.api`); reading outputs back (:mod:`.reader`); the map preview
(:mod:`.preview`).

May import :mod:`satclip.checkpoint`, :mod:`satclip.nn` and below; not
:mod:`satclip.evaluation`, :mod:`satclip.training` or :mod:`satclip.cli`.
"""

from .api import embed
from .runner import run_embedding

__all__ = ["embed", "run_embedding"]

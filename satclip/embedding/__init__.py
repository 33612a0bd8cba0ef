"""Embedding at scale: point sources (:mod:`.sources`: tables, grids, HEALPix, H3, arrays) ->
encoder -> sinks (:mod:`.sinks`: Parquet, Zarr, npy), streamed chunk by chunk and resumable
(:mod:`.runner`); in-memory ``satclip.embed`` (:mod:`.api`); the map preview (:mod:`.preview`);
the Ray Data adapter (:mod:`.ray_adapter`, optional).

May import :mod:`satclip.checkpoint`, :mod:`satclip.nn` and below; not
:mod:`satclip.evaluation`, :mod:`satclip.training` or :mod:`satclip.cli`.
"""

from .api import embed
from .runner import run_embedding

__all__ = ["embed", "run_embedding"]

"""``EncodeOptions``: how a location encoder computes its embeddings (not which model), checked
once, where the user hands them in (``LocationEncoder(precision=...)``, ``enc.precision = ...``,
``satclip.functional.location_encoder``, ``satclip embed --precision``).

Three sizes that are easy to confuse, each with its own name:

* ``chunk_points`` (:mod:`satclip.embedding`, ``satclip embed --chunk-points``): points per
  chunk of a streamed run: the unit that is read, encoded, written as one shard and resumed.
* ``tile_points`` (here): points per tile of the fused encoder: the ``[tile, L*L]`` features
  and activations it holds at once (its workspace); ``None`` picks
  :func:`satclip.functional.default_tile_points`. Results do not depend on it.
* ``row_block_points`` (here): the factorised path (``satclip.nn.iso_latitude``) prepares
  the first-layer weights of whole latitude rows for at most this many points at a time (its
  memory bound); it then works in tiles of ``tile_points`` as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._limits import PRECISIONS  # noqa: F401  (defined once; public here)
FACTORISE = ("auto", "always", "never")
FACTORISED_TILE_POINTS = 4096  # the factorised path's tiles (see benchmarks/results/cpu.md, group grid-*)


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class EncodeOptions:
    """How the fused inference path of a location encoder runs.

    Args:
        precision: GEMM operand precision (float32 encoders): ``"float32"`` (exact, default),
            ``"tf32"``, ``"bf16"`` or ``"float16"``: every GEMM's operands rounded to that format, products,
            sums, bias, w0 and sine in float32 (docs/guides/precision.md).
        factorise: first layer factorised over latitude rows for points that share latitudes
            (``satclip.nn.iso_latitude``): ``"auto"`` (default), ``"always"`` or ``"never"``.
        tile_points: points per tile of the fused encoder (None: the default for the degree,
            dtype and device).
        row_block_points: the factorised path's memory bound, in points.
        latitude_limit: latitudes clamped to [-limit, limit] degrees before the harmonics (None,
            the default: none). torchgeo's ``SatCLIP`` clamps at 89.95 (``satclip.load`` of a
            torchgeo module sets it, so the outputs match); the original SatCLIP does not.
    """
    precision: str = "float32"
    factorise: str = "auto"
    tile_points: int | None = None
    row_block_points: int = 1 << 18
    latitude_limit: float | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.factorise not in FACTORISE:
            raise ValueError(f"factorise must be one of {FACTORISE}, got {self.factorise!r}")
        if self.tile_points is not None:
            _positive_int("tile_points", self.tile_points)
        _positive_int("row_block_points", self.row_block_points)
        if self.latitude_limit is not None and not (isinstance(self.latitude_limit, (int, float))
                                                    and 0 < self.latitude_limit <= 90):
            raise ValueError(f"latitude_limit must be in (0, 90] degrees or None, got {self.latitude_limit!r}")

    def replace(self, **changes) -> "EncodeOptions":
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)



@dataclass(frozen=True)
class EncodePlan:
    """What the fused encoder runs, resolved once from :class:`EncodeOptions` for one degree, dtype
    and device by :func:`satclip.functional.plan` (the one place those options are checked against
    what they run on): immutable, every check passed. A :class:`~satclip.nn.LocationEncoder` keeps
    one per dtype and device (``enc.plan()``); ``satclip embed`` writes it to its manifest.

    Its fields: ``precision``, the mode asked for; ``run_precision``, the mode the kernels run
    (``"tf32"`` runs as ``"float32"`` on a CPU: no TF32 units there, and float32 lies within the
    tf32 mode's stated error); ``dtype`` (``"float32"`` or ``"float64"``) and ``device``
    (``"cpu"``, ``"cuda"``); ``legendre_polys``; ``tile_points``, the fused encoder's tile,
    resolved (the default for L, dtype and device unless the options set one); ``factorise``;
    ``factorised_tile_points`` and ``row_block_points``, the factorised path's tile and memory
    bound; ``latitude_limit``.
    """
    precision: str
    run_precision: str
    dtype: str
    device: str
    legendre_polys: int
    tile_points: int
    factorise: str
    factorised_tile_points: int
    row_block_points: int
    latitude_limit: float | None

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict (what a manifest records)."""
        return dataclasses.asdict(self)


_WARNED: set = set()


def renamed(old: str, new: str, where: str) -> None:
    """Warns once per process that ``old`` (a keyword or flag of ``where``) is now ``new``; the
    old name keeps working for one release."""
    if (where, old) in _WARNED:
        return
    _WARNED.add((where, old))
    import warnings
    warnings.warn(f"{where}: {old} is deprecated and will be removed after satclip 0.2; use {new}",
                  FutureWarning, stacklevel=3)

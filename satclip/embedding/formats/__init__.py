"""Output formats: one :class:`~.base.OutputFormat` subclass per format, in one registry that the
CLI (``--format`` choices and help), the runner (capabilities, bytes per row), the run state
(which files an output owns) and the reader ask. Adding a format is one module with one class,
registered below, and its tests (``csrc``/``docs`` untouched).

May import :mod:`satclip.embedding.sources`, ``.convert``, ``.durable``, ``.errors``; not the
runner, the state or the reader (they import this).
"""

from __future__ import annotations

from ..errors import SettingError
from .base import Block, Capabilities, OutputFormat, Writer, WriterSpec
from .cog import CogFormat
from .npy import NpyFormat
from .parquet import ParquetFormat
from .zarr_format import INT8_UNWRITTEN, ZarrFormat

_REGISTRY: dict[str, OutputFormat] = {}


def register(fmt: OutputFormat) -> OutputFormat:
    """Adds a format (an instance) under its name."""
    if not fmt.name or fmt.name in _REGISTRY:
        raise ValueError(f"a format needs a new name, got {fmt.name!r}")
    _REGISTRY[fmt.name] = fmt
    return fmt


for _fmt in (ParquetFormat(), ZarrFormat(), NpyFormat(), CogFormat()):
    register(_fmt)


def names() -> tuple[str, ...]:
    """The registered formats' names, the default (parquet) first."""
    return tuple(_REGISTRY)


def all_formats() -> tuple[OutputFormat, ...]:
    return tuple(_REGISTRY.values())


def get(name: str) -> OutputFormat:
    """The format called ``name``, or a refusal listing the others."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise SettingError(f"unknown output format {{fmt}}; expected one of {', '.join(names())}", fmt=name) from None


__all__ = ["Block", "Capabilities", "INT8_UNWRITTEN", "OutputFormat", "Writer", "WriterSpec", "all_formats", "get",
           "names", "register"]

"""Fails the docs build (a warning under ``-W``) when a public name has no docstring: every name
in ``satclip.__all__``, ``satclip.functional.__all__``, ``satclip.nn.__all__`` and
``satclip.embedding.__all__`` is what the API reference promises to document."""

from __future__ import annotations

import importlib
import inspect

from sphinx.util import logging

PUBLIC_MODULES = ("satclip", "satclip.functional", "satclip.nn", "satclip.embedding")
logger = logging.getLogger(__name__)


def undocumented() -> list[str]:
    missing = []
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        for name in getattr(mod, "__all__", ()):
            if name.startswith("__"):
                continue
            obj = getattr(mod, name)
            if not (inspect.getdoc(obj) or "").strip():
                missing.append(f"{modname}.{name}")
    return missing


def check(app) -> None:
    for name in undocumented():
        logger.warning(f"public name without a docstring: {name}", type="satclip", subtype="docstring")


def setup(app):
    app.connect("builder-inited", check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

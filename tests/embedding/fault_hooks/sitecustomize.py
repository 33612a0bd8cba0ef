"""Fault injection for the crash and resume tests, from outside the package.

A test puts this folder first on a child process's ``PYTHONPATH`` (``tests/conftest.py``,
``fault_env``); Python then imports this module at start-up, and it wraps functions of satclip's
embedding modules as they are imported. Shipped code reads no variable of a test's: the wrappers
read these (set only by the tests):

``FAULT_HOOKS_CRASH_AT=site:N[:INT]``
    At the N-th time the process reaches ``site`` (1-based) it sends itself SIGKILL (a real
    ``kill -9``: no ``finally``, no flush, no atexit), or SIGINT with ``:INT`` (a Ctrl-C at that
    moment). Sites, the moments a killed run is hardest to resume:

    * ``shard``: inside a chunk's write: for Parquet the shard's temporary file is written (and
      fsynced) and not yet renamed; for npy, Zarr and the COG's intermediate the chunk's embedding
      rows are on disk, its other arrays not;
    * ``create``: between the files of a new npy/Zarr output (some arrays exist, others not);
    * ``manifest``: inside a manifest write (the temporary file written, not yet renamed).

``FAULT_HOOKS_DIR=<folder>``
    Holds ``actor-exit-at`` (a chunk index) while a test wants a Ray encoder actor to die: the
    actor given that chunk exits (``os._exit``) before writing it, once (it leaves
    ``test-actor-exit-<i>`` in the output's run state).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
from pathlib import Path

_counts: dict = {}


def crash_point(site: str) -> None:
    spec = os.environ.get("FAULT_HOOKS_CRASH_AT")
    if not spec:
        return
    want, _, rest = spec.partition(":")
    if want != site:
        return
    n, _, sig = rest.partition(":")
    _counts[site] = _counts.get(site, 0) + 1
    if _counts[site] == int(n or 1):
        os.kill(os.getpid(), signal.SIGINT if sig == "INT" else signal.SIGKILL)


def _will_crash(site: str) -> bool:
    """Whether the next :func:`crash_point` of ``site`` kills the process."""
    spec = os.environ.get("FAULT_HOOKS_CRASH_AT", "")
    want, _, rest = spec.partition(":")
    return want == site and _counts.get(site, 0) + 1 == int(rest.partition(":")[0] or 1)


class _OsWithCrashingReplace:
    """The ``os`` module as one satclip module sees it: ``replace`` first passes a crash point."""

    def __init__(self, site: str):
        self._site = site

    def replace(self, src, dst):
        crash_point(self._site)
        return os.replace(src, dst)

    def __getattr__(self, name):
        return getattr(os, name)


def _patch_state(mod) -> None:
    mod.os = _OsWithCrashingReplace("manifest")  # write_json_atomic: temporary written, not renamed


def _patch_parquet(mod) -> None:
    original = mod.replace_durably

    def replace_durably(tmp, final, dirty=None):
        crash_point("shard")  # ParquetWriter.write: the shard written and fsynced, not renamed
        return original(tmp, final, dirty)
    mod.replace_durably = replace_durably


def _partial_then_crash(original):
    """A writer's write that, when the crash is due, puts the chunk's embedding rows on disk
    (its other arrays not) and then dies."""
    def write(self, chunk, data):
        if _will_crash("shard"):
            self.write_embedding_rows(chunk, data)
        crash_point("shard")  # counts every write
        return original(self, chunk, data)
    return write


def _patch_npy(mod) -> None:
    mod.NpyWriter.write = _partial_then_crash(mod.NpyWriter.write)
    create_npy = mod.create_npy

    def creating_npy(*args, **kwargs):
        create_npy(*args, **kwargs)
        crash_point("create")  # one .npy file of a new output made, the next ones not
    mod.create_npy = creating_npy


def _patch_cog(mod) -> None:
    mod.CogWriter.write = _partial_then_crash(mod.CogWriter.write)


def _patch_zarr(mod) -> None:
    mod.ZarrWriter.write = _partial_then_crash(mod.ZarrWriter.write)
    import zarr
    create_array = zarr.Group.create_array

    def creating_array(self, *args, **kwargs):
        out = create_array(self, *args, **kwargs)
        crash_point("create")
        return out
    zarr.Group.create_array = creating_array


def _patch_ray_adapter(mod) -> None:
    from satclip.embedding.state import state_dir

    original = mod._ShardWriter.write

    def write(self, chunk):
        folder = os.environ.get("FAULT_HOOKS_DIR")
        trigger = Path(folder) / "actor-exit-at" if folder else None
        if trigger is not None and trigger.is_file() and trigger.read_text().strip() == str(chunk.index):
            folder = Path(self.out)  # the folder the actor writes: the output, or its run state's staging folder
            marker = (folder.parent if folder.parent.name.endswith(".satclip") else state_dir(folder)) / \
                f"test-actor-exit-{chunk.index}"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
        return original(self, chunk)
    mod._ShardWriter.write = write


PATCHES = {"satclip.embedding.state": _patch_state, "satclip.embedding.formats.parquet": _patch_parquet,
           "satclip.embedding.formats.npy": _patch_npy, "satclip.embedding.formats.zarr_format": _patch_zarr,
           "satclip.embedding.formats.cog": _patch_cog,
           "satclip.embedding.ray_adapter": _patch_ray_adapter}


class _Loader(importlib.abc.Loader):
    def __init__(self, inner, patch):
        self.inner, self.patch = inner, patch

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        self.patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, PATCHES[name])
        return spec


if os.environ.get("FAULT_HOOKS_CRASH_AT") or os.environ.get("FAULT_HOOKS_DIR"):
    sys.meta_path.insert(0, _Finder())

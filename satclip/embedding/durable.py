"""Putting bytes on stable storage in the order that makes a crash (kill -9, power loss, a VM
that dies) safe: a file's data is fsynced before it is renamed into place, the directory that
holds the new name is fsynced after the rename, and only then is the chunk recorded in the
manifest (itself written the same way). A record in the manifest therefore always describes
bytes that are on disk; a crash anywhere before it at most costs the chunk being redone.

``DirtyDirs`` batches the directory fsyncs: a writer notes the directories it added names to;
the runner syncs them all at once, right before the manifest that records those chunks.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def fsync_path(path, *, data_only: bool = False) -> None:
    """fsync (or fdatasync) a file or directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    fsync_path(path)


def replace_durably(tmp: Path, final: Path, dirty: "DirtyDirs | None" = None) -> None:
    """Renames the (already fsynced) ``tmp`` to ``final``; the directory is synced now, or noted in
    ``dirty`` to be synced before the next manifest."""
    os.replace(tmp, final)
    if dirty is None:
        fsync_dir(final.parent)
    else:
        dirty.add(final.parent)


def write_bytes_durably(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or, after a crash, its previous content: a temporary dot-file
    written and fsynced, renamed over ``path``, the directory fsynced."""
    tmp = path.with_name("." + path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    replace_durably(tmp, path)


class DirtyDirs:
    """Directories that got new entries since the last :meth:`sync` (thread-safe)."""

    def __init__(self):
        self._dirs: set[Path] = set()
        self._lock = threading.Lock()

    def add(self, *dirs) -> None:
        with self._lock:
            self._dirs.update(Path(d) for d in dirs)

    def sync(self) -> None:
        with self._lock:
            dirs, self._dirs = self._dirs, set()
        # deepest first: a new subdirectory's entries before the entry that names it
        for d in sorted(dirs, key=lambda p: -len(p.parts)):
            if d.exists():
                fsync_dir(d)

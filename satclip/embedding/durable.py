"""Putting bytes on stable storage in the order that makes a crash (kill -9, power loss, a VM
that dies) safe: a file's data is fsynced before it is renamed into place, the directory that
holds the new name is fsynced after the rename, and only then is the chunk recorded in the
manifest (itself written the same way). A record in the manifest therefore always describes
bytes that are on disk; a crash anywhere before it at most costs the chunk being redone.

``SyncBatch`` batches the syncs that need not happen one chunk at a time: a writer notes the
directories it added names to and the files whose new bytes it has not synced itself (npy: rows
written in place); the runner syncs them all at once, right before the manifest that records
those chunks. A file that is renamed into place is synced by its writer before the rename.
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


def replace_durably(tmp: Path, final: Path, dirty: "SyncBatch | None" = None) -> None:
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


class SyncBatch:
    """Directories that got new entries, and files that got new bytes, since the last
    :meth:`sync` (thread-safe)."""

    def __init__(self):
        self._dirs: set[Path] = set()
        self._files: set[Path] = set()
        self._lock = threading.Lock()

    def add(self, *dirs) -> None:
        """Directories to fsync (their new entries)."""
        with self._lock:
            self._dirs.update(Path(d) for d in dirs)

    def add_file(self, *files) -> None:
        """Files to fdatasync (their new bytes)."""
        with self._lock:
            self._files.update(Path(f) for f in files)

    def sync(self) -> None:
        with self._lock:
            dirs, self._dirs = self._dirs, set()
            files, self._files = self._files, set()
        for f in sorted(files):
            fsync_path(f, data_only=True)
        # deepest first: a new subdirectory's entries before the entry that names it
        for d in sorted(dirs, key=lambda p: -len(p.parts)):
            if d.exists():
                fsync_dir(d)

"""The run state of an embedding output, kept in ``<out>/_satclip/`` so that the output folder
itself stays one clean dataset (Parquet readers, Spark and Hive tools skip names that start
with ``_`` or ``.``):

* ``manifest.json``: what identifies the run (model fingerprint, source, settings), the chunks
  written and, per chunk, its row count and CRC-32 (and file size for Parquet shards); written
  atomically (a temporary dot-file renamed).
* ``lock``: held with ``flock`` while a run writes; the kernel releases it when the process
  ends, however it ends, so a lock left by a killed run is free again. It holds the owner's pid,
  host and start time for the message a second run gets.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path


STATE_DIR = "_satclip"
MANIFEST = "manifest.json"


def manifest_path(out) -> Path:
    return Path(out) / STATE_DIR / MANIFEST


def read_manifest(out) -> dict | None:
    """The manifest of output ``out``, or None if it has none."""
    p = manifest_path(out)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError:
        raise ValueError(f"{p} is damaged (not JSON); use --overwrite to start the output again") from None


def write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def write_manifest(out: Path, manifest: dict) -> None:
    write_json_atomic(manifest_path(out), manifest)


def is_run_debris(p: Path) -> bool:
    """A temporary file of this package's atomic writes, left by a killed run."""
    return p.name.startswith(".") and p.name.endswith(".tmp")


class OutputLocked(RuntimeError):
    """Another process is writing to the same output."""


class OutputLock:
    """An exclusive ``flock`` on ``<out>/_satclip/lock`` for the duration of a run."""

    def __init__(self, out: Path):
        self.path = Path(out) / STATE_DIR / "lock"
        self.fd = None

    def acquire(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            owner = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise OutputLocked(f"{self.path.parent.parent} is being written by another run ({owner}); wait for it "
                               "to finish or stop it, then rerun (a lock left by a killed run frees itself)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, started "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

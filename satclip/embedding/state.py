"""The run state of an embedding output ``<out>``, kept beside it in the hidden folder
``.<name>.satclip/`` (:func:`state_dir`), so that the output folder holds the dataset and nothing
else: pandas, pyarrow, DuckDB, geopandas and polars read the folder itself (polars refuses a
folder that holds any file other than the dataset's, hidden or not). Keep the two together when
moving an output (a resume and ``--verify`` need the state; any reader does not):

* ``manifest.json``: what identifies the run (model fingerprint, source, settings), the chunks
  written and, per chunk, its row count and CRC-32 (and file size for Parquet shards), and where
  the rows are now (``data``: ``"staging"`` or ``"out"``); written atomically and durably (a
  temporary dot-file fsynced, renamed, the folder fsynced).
* ``partial/``: the output while its run is unfinished (:func:`staging_dir`). A run writes its
  rows here and moves the folder to ``<out>`` with one rename when the last chunk is recorded
  (the commit), so plain readers (pandas, polars, DuckDB, geopandas, xarray) never see an
  unfinished output: before the commit ``<out>`` does not exist. ``publish_partial=True``
  (``--publish-partial``) writes into ``<out>`` directly instead, for users who read rows as they
  land.
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


MANIFEST = "manifest.json"
STAGING = "partial"


def state_dir(out) -> Path:
    """``<parent>/.<name>.satclip``: the run state of output ``<parent>/<name>``."""
    out = Path(out).absolute()
    return out.parent / f".{out.name}.satclip"


def manifest_path(out) -> Path:
    return state_dir(out) / MANIFEST


def staging_dir(out) -> Path:
    """Where an unfinished run keeps its rows (see the module docstring)."""
    return state_dir(out) / STAGING


def data_dir(out, man: dict) -> Path:
    """The folder that holds the rows of output ``out`` now: the staging folder of an unfinished
    run, else the output itself (also for manifests older than the commit protocol, and for a
    run killed between its commit's rename and the manifest that records it)."""
    staging = staging_dir(out)
    if man.get("data") == "staging" and (staging.exists() or not Path(out).is_dir()):
        return staging
    return Path(out)


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
    """``path`` holds ``obj`` or, after a crash, its previous content, on stable storage: a
    temporary dot-file written and fsynced, renamed, the folder fsynced."""
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(out: Path, manifest: dict) -> None:
    write_json_atomic(manifest_path(out), manifest)


def is_run_debris(p: Path) -> bool:
    """A temporary file of this package's atomic writes, left by a killed run."""
    return p.name.startswith(".") and p.name.endswith(".tmp")


def is_own(p: Path) -> bool:
    """Whether ``p`` (an entry at the top of an output folder) is one this package writes (any
    registered format's files, or debris of its atomic writes)."""
    from .formats import all_formats

    return is_run_debris(p) or any(fmt.owns(p) for fmt in all_formats())


def foreign_files(out: Path) -> list[Path]:
    """The entries of an output folder that this package did not write (a user's notes, figures)."""
    return sorted(p for p in Path(out).iterdir() if not is_own(p))


class OutputLocked(RuntimeError):
    """Another process is writing to the same output."""


class OutputLock:
    """An exclusive ``flock`` on ``lock`` in the output's state folder for the duration of a run."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = state_dir(out) / "lock"
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
            raise OutputLocked(f"{self.out} is being written by another run ({owner}); wait for it "
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

"""Streaming embedder: source -> encoder -> format, chunk by chunk, resumable, committed at the end.

``run_embedding`` describes the run (:class:`~.job.EmbeddingJob`, checked once), prepares the
output, hands the chunks still to do to an executor (:mod:`.executors`: this process, or Ray),
records each finished chunk and commits the output when the last one is in.

Resume: the output's run state (``.<name>.satclip/`` beside it, see :mod:`.state`) names the model
(fingerprint of its weights and config), the source, the chunk size, the format and dtype, and
records every chunk written with its row count and CRC-32. Chunk ``i`` of a source always holds
the same rows, so a killed run (even ``kill -9``) resumed with the same command redoes only the
missing chunks and ends with exactly the rows of an uninterrupted run. A rerun checks the
chunks already written (sizes; with ``verify=True`` every byte against its CRC-32) and redoes
damaged or missing ones. A resume with another model, source or settings is refused; an
existing output is only replaced with ``overwrite=True``; two runs at once on one output are
refused (a lock that frees itself when its process dies).

Commit (Spark's job commit is the model): an unfinished run writes into its staging folder; when
every chunk is recorded the folder becomes ``out`` with one rename, so plain readers see the
whole output or nothing (``publish_partial=True`` writes into ``out`` directly). Durability: a
chunk is recorded only after its bytes and directory entries are on stable storage
(:mod:`.durable`), and the manifest is written the same way.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .._version import __version__
from .convert import OUT_DTYPES  # noqa: F401  (re-exported: the output dtypes)
from .durable import SyncBatch, fsync_dir
from .errors import SettingError
from .executors import LocalExecutor, WorkSpec
from .formats import WriterSpec
from .input_checks import InputChecks
from .job import EmbeddingJob, model_fingerprint
from .products import model_card, write_stac
from .progress import LineProgress, human_bytes, progress_bar  # noqa: F401  (LineProgress: its interval)
from .sources import Source
from .state import (OutputLock, foreign_files, is_own, manifest_path, read_manifest, staging_dir,
                    state_dir, write_manifest)

# Recording chunks (syncing their directories, then writing the manifest durably) takes at most
# 1/FLUSH_COST_SHARE of a run's time: a flush waits until FLUSH_COST_SHARE times the last flush's
# duration has passed since it ended (a few ms on a local disk: every chunk of slow chunks, a
# batch of fast ones; a large manifest, written less often). A crash loses at most the records
# since the last flush: those chunks are redone on resume.
FLUSH_COST_SHARE = 20
PRODUCT_KEYS = ("format", "dtype", "dim", "model", "model_config", "model_card", "precision", "source")


class EmbeddingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the chunks handed to the writers were finished and recorded; rerun to resume."""

    def __init__(self, out: Path, done: int, total: int):
        super().__init__(f"interrupted after {done} of {total} chunks; rerun the same command to resume")
        self.out, self.done, self.total = out, done, total


class DiskFull(OSError):
    """No space left for a chunk; the chunks recorded before it are intact."""


def run_embedding(encoder, source: Source, out, *, fmt: str = "parquet", out_dtype: str = "float32",
                  device=None, overwrite: bool = False, progress: bool | None = None, verify: bool = False,
                  log=None, executor=None, writers: int | None = None, publish_partial: bool = False,
                  compression: str | None = None) -> Path:
    """Embeds every point of ``source`` into ``out`` (a directory); resumes a killed run.

    Args:
        encoder: a ``satclip.LocationEncoder`` (its dtype is kept; float32 is fastest).
        source: a :class:`satclip.embedding.sources.Source` (table, grid, HEALPix, H3, array).
        out: output directory. It appears when the run completes (the rows are written into the
            run state's staging folder until then), unless ``publish_partial``.
        fmt: an output format's name (:func:`satclip.embedding.formats.names`: ``"parquet"``,
            ``"zarr"``, ``"npy"``).
        out_dtype: ``"float32"``, ``"float16"`` or ``"int8"`` (per-point scale stored beside the
            codes: ``embedding = code * embedding_scale``).
        device: where to run the encoder (default: the encoder's device).
        overwrite: replace an existing output instead of resuming it.
        progress: False for none; otherwise a bar when stderr is a terminal, else a line through
            ``log`` every 10 s (chunks, points/s, ETA).
        verify: read back every chunk already written against its CRC-32 (default: sizes only)
            and redo the damaged ones.
        log: called with one-line messages (resuming, damaged chunks, rows written, points/s).
        executor: where chunks are encoded and written (default: here, reader -> encoder ->
            writer threads); :class:`satclip.embedding.ray_adapter.RayExecutor` sends each
            chunk to an encoder actor that writes its shard. The output, manifest and resume
            are the same either way.
        writers: writer threads of the local executor (default: one per core, at most 4 beside
            a CPU encoder, 8 beside a GPU).
        publish_partial: write the rows into ``out`` as they land (readers see an unfinished
            output as it grows) instead of committing the whole output at the end.
        compression: ``None`` (the format's default: stored as it is, except a COG, which is
            ZSTD-compressed, smaller and faster there), ``"none"`` or ``"zstd"`` (Parquet: ZSTD
            pages; Zarr: Blosc-Zstd in 64 x 64-cell inner chunks, one shard per source chunk; COG:
            ZSTD with the floating-point predictor). Sizes and times per format:
            ``benchmarks/results/product-sizes.md``.
    Returns the output directory.

    Raises:
        EmbeddingInterrupted: on Ctrl-C, after the chunks in flight were written and recorded.
        DiskFull: no space for a chunk; free space and rerun to resume.
        satclip.embedding.state.OutputLocked: another run writes to ``out``.
        satclip.embedding.errors.SettingError: settings that cannot go together (a ValueError).
    """
    job = EmbeddingJob.create(encoder, source, out, fmt=fmt, out_dtype=out_dtype, device=device, writers=writers,
                              executor=executor, log=log, overwrite=overwrite, progress=progress, verify=verify,
                              publish_partial=publish_partial, compression=compression)
    return Run(job).execute()


def _check_space(folder: Path, rows: int, fmt, out_dtype: str, dim: int, keep_cols) -> None:
    """Refuses a run whose output cannot fit the free space of its disk (an estimate from rows x
    bytes per row, carried columns not counted), before anything is written."""
    if rows <= 0:
        return
    per_row = fmt.bytes_per_row(out_dtype, dim)
    need = rows * per_row
    where = folder
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        extra = " plus the carried columns" if keep_cols else ""
        raise SettingError(f"the output would take about {human_bytes(need)} ({rows:,} rows x {per_row} bytes{extra}),"
                           f" but {where} has {human_bytes(free)} free; free space, choose another output folder, "
                           "fewer points (a coarser grid) or a smaller {out_dtype=float16} or {out_dtype=int8}. "
                           "Nothing was written")


class Run:
    """One execution of a job: prepare (resume or start), write the missing chunks, commit."""

    def __init__(self, job: EmbeddingJob):
        self.job = job
        self.out = job.out
        self.lock = threading.Lock()        # the manifest and the pending records
        self.flush_lock = threading.Lock()  # one flush at a time
        self.dirty = SyncBatch()
        self.pending: list = []  # (chunk index, record) of finished chunks not yet in the manifest
        self.last_flush, self.flush_cost = 0.0, 0.0
        self.t0 = time.perf_counter()

    # -- the output before the run ----------------------------------------------------------------

    def _source(self) -> Source:
        """The source, with chunks of whole grid rows where the format stores a grid (a copy; the
        caller's is left as it is)."""
        src, grid = self.job.source, self.job.grid_shape
        if grid and src.chunk_points % grid[1]:
            return src.with_chunk_points(max(1, src.chunk_points // grid[1]) * grid[1])
        return src

    def _identity(self) -> dict:
        enc = self.job.encoder
        return {"format": self.job.format.name, "dtype": self.job.out_dtype, "dim": enc.dim_out,
                "model": model_fingerprint(enc), "model_config": enc.config(),
                "precision": getattr(enc, "precision", "float32"),  # image encoders have none
                "source": self.source.describe(), "chunk_points": self.source.chunk_points,
                "compression": self.job.compression}

    def _plan(self) -> dict | None:
        """What the encoder runs on the job's device (its EncodePlan), for the manifest: not part
        of the output's identity (a resume on another device is allowed), a record of the run."""
        enc = self.job.encoder
        if not hasattr(enc, "plan"):  # image encoders
            return None
        return enc.plan(device=self.job.device.type).as_dict()

    def _refuse_foreign(self) -> None:
        out = self.out
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"{out} exists and is a file, not an output directory; choose another output folder")
        if out.is_dir() and read_manifest(out) is None and not all(is_own(p) for p in out.iterdir()):
            raise FileExistsError(f"{out} exists and is not a satclip embedding output (no run state "
                                  f"{manifest_path(out)} beside it); choose another output folder (nothing was "
                                  "deleted)")

    def _clear(self) -> None:
        """Removes this package's files from the output and its run state (never anything else;
        the lock this run holds stays)."""
        for q in state_dir(self.out).iterdir():
            if q.name != "lock":
                shutil.rmtree(q) if q.is_dir() else q.unlink()
        if self.out.is_dir():
            for p in self.out.iterdir():
                if is_own(p):
                    shutil.rmtree(p) if p.is_dir() else p.unlink()

    def _previous(self, want: dict) -> dict:
        """The manifest to continue from (resume) or an empty one, after refusing inconsistent cases."""
        have = read_manifest(self.out)
        if have is None:
            return {}
        if self.job.overwrite:
            foreign = foreign_files(self.out) if self.out.is_dir() else []
            if foreign:
                names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in foreign[:10])
                more = f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
                raise FileExistsError(f"{self.out} holds files this package did not write ({names}{more}); "
                                      "--overwrite replaces only its own files (shards, arrays, the run state): move "
                                      "those elsewhere, or choose another output folder. Nothing was deleted")
            self._clear()
            return {}
        diffs = [k for k in want if have.get(k) != want[k]]
        if diffs and not have.get("done"):
            self._clear()  # a run that wrote no chunk: nothing to keep, nothing to resume
            return {}
        if diffs:
            raise SettingError(f"{self.out} holds a run with different {', '.join(diffs)}; resume needs the same "
                               "model, inputs and settings. Pass {overwrite=True} to replace it")
        return have

    def _place_data(self, man: dict) -> Path:
        """Where this run writes its rows, moving rows already written if the publishing mode
        changed (a rename: the staging folder and the output share a parent)."""
        out, staging = self.out, staging_dir(self.out)
        where = man.get("data") or ("out" if man.get("done") else None)  # no key: a manifest of before the commit
        if where == "staging" and not staging.exists() and out.is_dir():
            where = "out"  # killed between the commit's rename and its manifest: the rename happened
        want = "out" if self.job.publish_partial or man.get("complete") else "staging"
        if where is not None and where != want and not man.get("complete"):
            src, dst = (staging, out) if want == "out" else (out, staging)
            if src.exists():
                if dst.is_dir() and not any(dst.iterdir()):
                    dst.rmdir()
                if want == "staging" and foreign_files(out):
                    raise FileExistsError(f"{out} holds files this package did not write; the unfinished run in it "
                                          "cannot be moved to its staging folder: move them elsewhere or pass "
                                          "--publish-partial to keep writing into it")
                os.rename(src, dst)
                fsync_dir(out.parent)
                fsync_dir(state_dir(out))
        man["data"] = want if not man.get("complete") else "out"
        return staging if man["data"] == "staging" else out

    # -- recording ----------------------------------------------------------------------------

    def record(self, chunk, rec) -> None:
        """A finished chunk (called from the executor's threads): noted at once, and in the
        manifest at the next flush, once its directory entries are synced."""
        if chunk.skipped:
            rec = dict(rec, skipped=list(chunk.skipped))
        if len(chunk.lon):  # the chunk's extent: the STAC bbox of the output is their union
            lon, lat = np.asarray(chunk.lon), np.asarray(chunk.lat)
            rec = dict(rec, bbox=[float(np.mod(lon + 180.0, 360.0).min() - 180.0), float(lat.min()),
                                  float(np.mod(lon + 180.0, 360.0).max() - 180.0), float(lat.max())])
        self.checks.add(chunk)
        with self.lock:
            self.pending.append((chunk.index, rec))
            due = time.perf_counter() - self.last_flush >= FLUSH_COST_SHARE * self.flush_cost
        if due and self.flush_lock.acquire(blocking=False):  # another thread flushing takes this record along
            try:
                self._flush()
            finally:
                self.flush_lock.release()

    def flush(self) -> None:
        """Records every pending chunk now (the end of the run, an interrupt, an error)."""
        with self.flush_lock:
            self._flush()

    def _flush(self) -> None:
        """(flush_lock held) syncs the directories the pending chunks added entries to, then writes
        the manifest that records them, durably; the other writers go on meanwhile."""
        t = time.perf_counter()
        with self.lock:
            batch, self.pending = self.pending, []
        self.dirty.sync()  # covers the batch: a writer notes its directories before it records
        with self.lock:
            for index, rec in batch:
                self.manifest["done"].append(index)
                self.manifest["shards"][str(index)] = rec
            self.manifest["done"].sort()
            snapshot = dict(self.manifest, done=list(self.manifest["done"]), shards=dict(self.manifest["shards"]))
        write_manifest(self.out, snapshot)
        self.last_flush = time.perf_counter()
        self.flush_cost = self.last_flush - t

    # -- the run ------------------------------------------------------------------------------

    def execute(self) -> Path:
        job, out = self.job, self.out
        self.source = self._source()
        want = self._identity()
        self._refuse_foreign()
        new_state, new_out = not state_dir(out).exists(), not out.exists()
        state_dir(out).mkdir(parents=True, exist_ok=True)
        lock = OutputLock(out).acquire()
        self.manifest = dict(want, satclip_version=__version__, done=[], shards={}, complete=False,
                             model_card=model_card(want["model_config"], job.origin), plan=self._plan())
        try:
            return self._run(self._previous(want))
        except BaseException:
            if new_state and not self.manifest["done"]:  # a run refused before its first chunk leaves nothing behind
                lock.release()
                shutil.rmtree(state_dir(out), ignore_errors=True)
                if new_out:
                    shutil.rmtree(out, ignore_errors=True)
            raise
        finally:
            lock.release()

    def _run(self, have: dict) -> Path:
        job, out, source = self.job, self.out, self.source
        n_chunks = source.num_chunks
        done = set(have.get("done", []))
        shards = {k: v for k, v in (have.get("shards") or {}).items() if int(k) in done}
        self.manifest.update(num_chunks=n_chunks, done=sorted(done), shards=shards, complete=bool(have.get("complete")))
        self.manifest["data"] = have.get("data")
        folder = self._place_data(self.manifest)
        dim = self.manifest["dim"]
        _check_space(folder, len(source) - sum(r["rows"] for r in shards.values()), job.format, job.out_dtype, dim,
                     source.keep_cols)
        write_manifest(out, self.manifest)  # before the writer creates anything: from here on a crash resumes
        scratch = state_dir(out) / "tmp"  # temporaries of the writers; a killed run's are debris now
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        spec = WriterSpec(folder=folder, dim=dim, dtype=job.out_dtype, scratch=scratch, compression=job.compression,
                          n=len(source) if job.format.capabilities.needs_row_count else None,
                          chunk_points=source.chunk_points, grid_shape=job.grid_shape,
                          metadata={"satclip_version": __version__, "model": self.manifest["model"],
                                    "model_config": self.manifest["model_config"],
                                    "precision": self.manifest["precision"]},
                          product={k: self.manifest.get(k) for k in PRODUCT_KEYS})
        writer = job.format.open_writer(spec, self.dirty)
        try:
            if writer.created and done:
                job.log(f"{out}: the output's files were missing or unreadable and were created anew; "
                        f"recomputing all {n_chunks} chunks")
                done, shards = set(), {}
            # What is recorded must still be on disk: redo what is damaged or missing.
            bad = sorted(i for i in done if str(i) in shards
                         and not writer.check(i, source.chunk_start(i), shards[str(i)], full=job.verify))
            if bad:
                job.log(f"{len(bad)} of {len(done)} chunks written earlier are damaged or missing (first: chunk "
                        f"{bad[0]}); recomputing them")
                done -= set(bad)
                for i in bad:
                    shards.pop(str(i))
            elif done:
                job.log(f"checked {len(done)} chunks written earlier ({'every byte' if job.verify else 'sizes'}): "
                        "intact")
            self.manifest.update(done=sorted(done), shards=shards, complete=len(done) == n_chunks and
                                 self.manifest["complete"])
            self.dirty.sync()
            write_manifest(out, self.manifest)
            if done and len(done) < n_chunks:
                job.log(f"resuming: {len(done)} of {n_chunks} chunk{'s' * (n_chunks != 1)} already written")
            todo_rows = len(source) - sum(r["rows"] for r in shards.values())
            self._execute_chunks(writer, spec, done, n_chunks)
            self.flush()
            if len(self.manifest["done"]) == n_chunks:
                writer.finalize()  # what the format makes of the whole (a COG from its intermediate)
        finally:
            writer.close()
        self.flush()
        self._commit(n_chunks)
        self._report(n_chunks, todo_rows)
        return out

    def _execute_chunks(self, writer, spec: WriterSpec, done: set, n_chunks: int) -> None:
        job = self.job
        self.checks = InputChecks(len(self.source), self.source.id_col is not None)
        bar = progress_bar(n_chunks, len(done), job.progress, job.log, self.source.chunk_points)
        work = WorkSpec(job.encoder.to(job.device).eval(), job.device, job.out_dtype, job.format, spec, writer,
                        self.dirty, job.n_writers)
        executor = job.executor or LocalExecutor()

        def interrupted():
            self.flush()
            return EmbeddingInterrupted(self.out, len(self.manifest["done"]), n_chunks)

        try:
            executor.run(work, self.source.chunks(skip=done), self.record, bar, interrupted)
        except OSError as exc:
            self.flush()  # what is written so far, so the resume keeps it
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                which = getattr(exc, "chunk_index", None)
                raise DiskFull(exc.errno, f"no space left on the device of {self.out} while writing "
                                          f"{'a chunk' if which is None else f'chunk {which}'} "
                                          f"({len(self.manifest['done'])} of {n_chunks} chunks are written and kept); "
                                          "free space and rerun the same command to resume") from None
            raise
        except BaseException:
            self.flush()
            raise

    def _commit(self, n_chunks: int) -> None:
        """Every chunk recorded: the staging folder becomes the output (one rename), then the
        manifest says so. A crash between the two is finished by the next run (see _place_data)."""
        man, out = self.manifest, self.out
        if len(man["done"]) != n_chunks:
            return
        if man.get("data") == "staging":
            staging = staging_dir(out)
            if out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # an empty folder made beforehand (by the user): replaced by the output
            try:
                os.rename(staging, out)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise FileExistsError(f"every chunk is written, but {out} now holds other files, so the output "
                                          f"(in {staging}) cannot be moved there; move those files elsewhere and "
                                          "rerun the same command to finish") from None
                raise
            fsync_dir(out.parent)
            man["data"] = "out"
        man["complete"] = True
        write_manifest(out, man)
        write_stac(out, man, datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def _report(self, n_chunks: int, todo_rows: int) -> None:
        man, source, log = self.manifest, self.source, self.job.log
        if not man["complete"]:
            return
        rows = sum(r["rows"] for r in man["shards"].values())
        skipped = [name for r in man["shards"].values() for name in r.get("skipped", ())]
        if len(man["shards"]) == n_chunks and rows + len(skipped) != len(source):
            raise RuntimeError(f"{self.out}: {rows:,} rows written and {len(skipped):,} inputs skipped, but the input "
                               f"has {len(source):,}")
        dt = time.perf_counter() - self.t0
        speed = f" in {dt:.1f} s ({todo_rows / dt:,.0f} points/s)" if todo_rows > 0 and dt > 0 else ""
        log(f"{rows:,} rows written of {len(source):,} expected{speed}"
            + (f"; {len(skipped):,} inputs skipped (first: {skipped[0]}; all listed in {manifest_path(self.out)})"
               if skipped else ""))
        for note in self.checks.notes():
            log(note)

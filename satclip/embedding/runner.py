"""Streaming embedder: source -> encoder -> sink, chunk by chunk, resumable.

Pipeline: a reader thread pulls chunks from the source (bounded queue), the main thread
encodes them (pinned buffers and non-blocking copies on CUDA), a writer thread writes them;
memory stays bounded whatever N is.

Resume: the output's run state (``.<name>.satclip/`` beside it, see :mod:`.state`) names the model
(fingerprint of its weights and config), the source, the chunk size, the format and dtype, and
records every chunk written with its row count and CRC-32. Chunk ``i`` of a source always holds
the same rows, so a killed run (even ``kill -9``) resumed with the same command redoes only the
missing chunks and ends with exactly the rows of an uninterrupted run. A rerun checks the
chunks already written (sizes; with ``verify=True`` every byte against its CRC-32) and redoes
damaged or missing ones. A resume with another model, source or settings is refused; an
existing output is only replaced with ``overwrite=True``; two runs at once on one output are
refused (a lock that frees itself when its process dies).
"""

from __future__ import annotations

import errno
import hashlib
import json
import queue
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from .sinks import FORMATS, make_sink, quantize_int8, quantize_int8_torch
from .sources import Source
from .state import OutputLock, foreign_files, is_own, manifest_path, read_manifest, state_dir, write_manifest

OUT_DTYPES = ("float16", "float32", "int8")
# The manifest is rewritten after every chunk while it is small; a large one (many thousands of
# chunks) at most once a second, so writing it never costs more than the chunks themselves. A
# crash loses at most that second's records: those chunks are redone on resume.
_MANIFEST_EVERY_CHUNK_BYTES = 64 << 10


class EmbeddingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the chunks handed to the writer were finished and recorded; rerun to resume."""

    def __init__(self, out: Path, done: int, total: int):
        super().__init__(f"interrupted after {done} of {total} chunks; rerun the same command to resume")
        self.out, self.done, self.total = out, done, total


class DiskFull(OSError):
    """No space left for a chunk; the chunks recorded before it are intact."""


def model_fingerprint(encoder) -> str:
    h = hashlib.sha256(json.dumps(encoder.config(), sort_keys=True).encode())
    for k, v in sorted(encoder.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()


def _refuse_foreign(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is a file, not an output directory; choose another --out")
    if out.is_dir() and read_manifest(out) is None and not all(is_own(p) for p in out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a satclip embedding output (no run state "
                              f"{manifest_path(out)} beside it); "
                              "choose another --out (nothing was deleted)")


def _clear(out: Path) -> None:
    """Removes this package's files from an output and its run state (never anything else; the
    lock this run holds stays)."""
    for q in state_dir(out).iterdir():
        if q.name != "lock":
            shutil.rmtree(q) if q.is_dir() else q.unlink()
    for p in out.iterdir():
        if is_own(p):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def _prepare_output(out: Path, want: dict, overwrite: bool) -> dict:
    """The manifest to continue from (resume) or an empty one, after refusing inconsistent cases."""
    have = read_manifest(out)
    if have is None:
        return {}
    if overwrite:
        foreign = foreign_files(out)
        if foreign:
            names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in foreign[:10])
            more = f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
            raise FileExistsError(f"{out} holds files this package did not write ({names}{more}); --overwrite replaces "
                                  "only its own files (shards, arrays, the run state): move those elsewhere, or "
                                  "choose another --out. Nothing was deleted")
        _clear(out)
        return {}
    diffs = [k for k in want if have.get(k) != want[k]]
    if diffs and not have.get("done"):
        _clear(out)  # a run that wrote no chunk: nothing to keep, nothing to resume
        return {}
    if diffs:
        raise ValueError(f"{out} holds a run with different {', '.join(diffs)}; resume needs the same model, "
                         "inputs and settings. Pass overwrite=True (--overwrite) to replace it")
    return have


def _noop(msg: str) -> None:
    pass


def bytes_per_row(fmt: str, out_dtype: str, dim: int) -> int:
    """About what one point takes on disk: the embedding (and an int8 scale), plus id, lon, lat and,
    for Parquet, the WKB point (the Zarr grid layout keeps coordinates per row and column only)."""
    emb = dim * np.dtype(out_dtype).itemsize + (4 if out_dtype == "int8" else 0)
    return emb + {"parquet": 50, "npy": 24, "zarr": 24}[fmt]


def _human(n: float) -> str:
    units = ("bytes", "KB", "MB", "GB", "TB", "PB", "EB")
    k = 0
    while n >= 1000 and k < len(units) - 1:
        n, k = n / 1000, k + 1
    return f"{n:,.0f} bytes" if k == 0 else f"{n:,.1f} {units[k]}"


def _check_space(out: Path, rows: int, fmt: str, out_dtype: str, dim: int, keep_cols) -> None:
    """Refuses a run whose output cannot fit the free space of its disk (an estimate from rows x
    bytes per row, carried columns not counted), before anything is written."""
    if rows <= 0:
        return
    need = rows * bytes_per_row(fmt, out_dtype, dim)
    where = out
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        extra = " plus the carried columns" if keep_cols else ""
        raise ValueError(f"the output would take about {_human(need)} ({rows:,} rows x {bytes_per_row(fmt, out_dtype, dim)}"
                         f" bytes{extra}), but {where} has {_human(free)} free; free space, choose another --out, "
                         "fewer points (a coarser --grid) or a smaller --dtype (float16, int8). Nothing was written")


def run_embedding(encoder, source: Source, out, *, fmt: str = "parquet", out_dtype: str = "float32",
                  device=None, overwrite: bool = False, progress: bool | None = None, verify: bool = False,
                  log=None, executor=None) -> Path:
    """Embeds every point of ``source`` into ``out`` (a directory); resumes a killed run.

    Args:
        encoder: a ``satclip.LocationEncoder`` (its dtype is kept; float32 is fastest).
        source: a :class:`satclip.embedding.sources.Source` (table, grid, HEALPix, H3, array).
        out: output directory.
        fmt: ``"parquet"``, ``"npy"`` or ``"zarr"``.
        out_dtype: ``"float32"``, ``"float16"`` or ``"int8"`` (per-point scale stored beside the codes).
        device: where to run the encoder (default: the encoder's device).
        overwrite: replace an existing output instead of resuming it.
        progress: False for none; otherwise a bar when stderr is a terminal, else a line through
            ``log`` every 10 s (chunks, points/s, ETA).
        verify: read back every chunk already written against its CRC-32 (default: sizes only)
            and redo the damaged ones.
        log: called with one-line messages (resuming, damaged chunks, rows written).
        executor: where chunks are encoded and written (default: here, reader -> encoder ->
            writer threads); :class:`satclip.embedding.ray_adapter.RayExecutor` sends each
            chunk to an encoder actor that writes its shard. The output, manifest and resume
            are the same either way.
    Returns the output directory.

    Raises:
        EmbeddingInterrupted: on Ctrl-C, after the chunks in flight were written and recorded.
        DiskFull: no space for a chunk; free space and rerun to resume.
        satclip.embedding.state.OutputLocked: another run writes to ``out``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if out_dtype not in OUT_DTYPES:
        raise ValueError(f"out_dtype must be one of {OUT_DTYPES}, got {out_dtype!r}")
    if getattr(source, "keep_cols", None) and fmt != "parquet":
        raise ValueError(f"--keep-cols needs --format parquet (--format {fmt} stores embeddings, ids and coordinates)")
    if getattr(source, "on_invalid", "fail") == "skip" and fmt != "parquet":
        raise ValueError(f"--on-invalid skip needs --format parquet (--format {fmt} keeps one row per input row)")
    log = log or _noop
    out = Path(out)
    grid_shape = getattr(source, "grid_shape", None) if fmt == "zarr" else None
    if grid_shape and source.chunk_points % grid_shape[1]:
        # grid Zarr chunks are whole rows, written once each: chunks of whole rows (a copy of the
        # source; the caller's is left as it is)
        source = source.with_chunk_points(max(1, source.chunk_points // grid_shape[1]) * grid_shape[1])
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    encoder = encoder.to(device).eval()
    want = {"format": fmt, "dtype": out_dtype, "dim": encoder.dim_out, "model": model_fingerprint(encoder),
            "model_config": encoder.config(), "precision": getattr(encoder, "precision", "float32"),
            "source": source.describe(), "chunk_points": source.chunk_points}
    _refuse_foreign(out)
    new_dir, new_state = not out.exists(), not state_dir(out).exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(out).acquire()
    manifest = dict(want, satclip_version=__version__, done=[], shards={}, complete=False)
    try:
        return _run(encoder, source, out, fmt, out_dtype, device, grid_shape, progress, verify, log, manifest,
                    _prepare_output(out, want, overwrite), executor)
    except BaseException:
        if new_dir and not manifest["done"]:
            lock.release()
            shutil.rmtree(out, ignore_errors=True)  # a run refused before its first chunk leaves nothing behind
            if new_state:
                shutil.rmtree(state_dir(out), ignore_errors=True)
        raise
    finally:
        lock.release()


def _run(encoder, source, out, fmt, out_dtype, device, grid_shape, progress, verify, log, manifest, have,
         executor=None) -> Path:
    n_chunks = source.num_chunks
    done = set(have.get("done", []))
    shards = {k: v for k, v in (have.get("shards") or {}).items() if int(k) in done}
    manifest.update(num_chunks=n_chunks, done=sorted(done), shards=shards)
    dim = manifest["dim"]
    _check_space(out, len(source) - sum(r["rows"] for r in shards.values()), fmt, out_dtype, dim,
                 getattr(source, "keep_cols", None))
    write_manifest(out, manifest)  # before the sink creates anything: a crash from here on leaves a resumable output
    needs_n = fmt in ("npy", "zarr")
    sink_kwargs = dict(out=out, dim=dim, dtype=out_dtype, n=len(source) if needs_n else None,
                       chunk_points=source.chunk_points, grid_shape=grid_shape,
                       metadata={"satclip_version": __version__, "model": manifest["model"],
                                 "model_config": manifest["model_config"]})
    sink = make_sink(fmt, **sink_kwargs)
    if sink.created and done:
        log(f"{out}: the output's arrays were missing or unreadable and were created anew; "
            f"recomputing all {n_chunks} chunks")
        done, shards = set(), {}
    # What is recorded must still be on disk: redo what is damaged or missing.
    bad = sorted(i for i in done if str(i) in shards
                 and not sink.check(i, source.chunk_start(i), shards[str(i)], full=verify))
    if bad:
        log(f"{len(bad)} of {len(done)} chunks written earlier are damaged or missing (first: chunk {bad[0]}); "
            "recomputing them")
        done -= set(bad)
        for i in bad:
            shards.pop(str(i))
    elif done:
        log(f"checked {len(done)} chunks written earlier ({'every byte' if verify else 'sizes'}): intact")
    manifest.update(done=sorted(done), shards=shards)
    write_manifest(out, manifest)
    if done and len(done) < n_chunks:
        log(f"resuming: {len(done)} of {n_chunks} chunk{'s' * (n_chunks != 1)} already written")

    state = {"last_write": 0.0}
    lock = threading.Lock()
    checks = InputChecks(len(source), getattr(source, "id_col", None) is not None)

    def record(chunk, rec):
        if chunk.skipped:
            rec = dict(rec, skipped=list(chunk.skipped))
        checks.add(chunk)
        with lock:
            manifest["done"].append(chunk.index)
            manifest["done"].sort()
            manifest["shards"][str(chunk.index)] = rec
            now = time.monotonic()
            if len(manifest["shards"]) * 80 < _MANIFEST_EVERY_CHUNK_BYTES or now - state["last_write"] > 1.0:
                write_manifest(out, manifest)
                state["last_write"] = now

    def write(chunk, emb):
        try:
            rec = write_chunk(sink, chunk, emb, out_dtype)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                with lock:
                    write_manifest(out, manifest)  # what is written so far, so the resume keeps it
                raise DiskFull(exc.errno, f"no space left on the device of {out} while writing chunk {chunk.index} "
                                          f"({len(manifest['done'])} of {n_chunks} chunks are written and kept); free "
                                          "space and rerun the same command to resume") from None
            raise
        record(chunk, rec)

    bar = _progress_bar(n_chunks, len(done), progress, log, source.chunk_points)
    interrupted = lambda: EmbeddingInterrupted(out, len(manifest["done"]), n_chunks)  # noqa: E731
    if executor is None:
        _stream(encoder, source, done, device, out_dtype, write, bar, interrupted)
    else:
        executor.run(encoder, source.chunks(skip=done), fmt=fmt, sink_kwargs=sink_kwargs, out_dtype=out_dtype,
                     record=record, bar=bar, interrupted=interrupted)
    sink.close()
    manifest["complete"] = len(manifest["done"]) == n_chunks
    write_manifest(out, manifest)
    rows = sum(r["rows"] for r in manifest["shards"].values())
    skipped = [name for r in manifest["shards"].values() for name in r.get("skipped", ())]
    if manifest["complete"] and len(manifest["shards"]) == n_chunks:
        if rows + len(skipped) != len(source):
            raise RuntimeError(f"{out}: {rows:,} rows written and {len(skipped):,} inputs skipped, but the input has "
                               f"{len(source):,}")
        log(f"{rows:,} rows written of {len(source):,} expected"
            + (f"; {len(skipped):,} inputs skipped (first: {skipped[0]}; all listed in {manifest_path(out)})"
               if skipped else ""))
    for note in checks.notes():
        log(note)
    return out


class InputChecks:
    """What is legal but probably not meant, counted over the chunks of this run and said at the
    end: longitudes outside [-180, 180] (taken as periodic: 400 is 40) and repeated ids (checked
    for inputs of up to ``MAX_IDS`` rows with an id column; the output keeps every row)."""

    MAX_IDS = 1_000_000  # a set of a million ids is about 100 MB; more would break the flat memory

    def __init__(self, n: int, has_id_col: bool):
        self.lon_outside = 0
        self.first_outside = None
        self.seen = set() if has_id_col and n <= self.MAX_IDS else None
        self.duplicates = 0
        self.first_duplicate = None
        self.lock = threading.Lock()

    def add(self, chunk) -> None:
        outside = np.abs(np.asarray(chunk.lon)) > 180
        with self.lock:
            if outside.any():
                self.lon_outside += int(outside.sum())
                if self.first_outside is None:
                    self.first_outside = float(np.asarray(chunk.lon)[outside][0])
            if self.seen is not None:
                ids = chunk.ids.to_pylist() if hasattr(chunk.ids, "to_pylist") else chunk.ids.tolist()
                for v in ids:
                    if v in self.seen:
                        self.duplicates += 1
                        if self.first_duplicate is None:
                            self.first_duplicate = v
                    else:
                        self.seen.add(v)

    def notes(self) -> list[str]:
        out = []
        if self.lon_outside:
            out.append(f"warning: {self.lon_outside:,} points have a longitude outside [-180, 180] (first: "
                       f"{self.first_outside}); taken as periodic (400 = 40): check the input if that is unexpected")
        if self.duplicates:
            out.append(f"warning: {self.duplicates:,} rows repeat an id of an earlier row (first: "
                       f"{self.first_duplicate!r}); every row was embedded")
        return out


def _stream(encoder, source, done, device, out_dtype, write, bar, interrupted) -> None:
    """Reader thread -> encoder (this thread) -> writer thread, for every chunk not in ``done``."""
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def reader():
        try:
            for chunk in source.chunks(skip=done):
                while not stop.is_set():
                    try:
                        q.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(None)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the main thread)
            q.put(exc)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    pending = []
    try:
        with ThreadPoolExecutor(max_workers=1) as writer, torch.no_grad():
            try:
                while True:
                    item = q.get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    emb = encode_chunk(encoder, item, device, out_dtype)
                    pending.append(writer.submit(write, item, emb))
                    while len(pending) > 2:  # bounded: at most two chunks waiting to be written
                        pending.pop(0).result()
                    if bar is not None:
                        bar.update(1)
                for f in pending:
                    f.result()
            except KeyboardInterrupt:
                stop.set()
                for f in pending:  # the chunks already encoded are written and recorded
                    if f.exception() is not None:
                        break
                raise interrupted() from None
    finally:
        stop.set()
        if bar is not None:
            bar.close()


def write_chunk(sink, chunk, emb, out_dtype: str) -> dict:
    """Converts the encoder's output to ``out_dtype`` (int8: codes and per-point scales) and
    writes the chunk's shard; returns the shard's record for the manifest."""
    if out_dtype == "int8":
        return sink.write(chunk, *(emb if isinstance(emb, tuple) else quantize_int8(emb)))
    return sink.write(chunk, emb.astype(out_dtype, copy=False))


def encode_chunk(encoder, chunk, device, out_dtype: str):
    """The encoder's output for one chunk, on the host (see :func:`to_host`)."""
    if hasattr(encoder, "encode_chunk"):  # an encoder of other inputs (images): its own reading
        return to_host(encoder.encode_chunk(chunk), out_dtype, on_device=device.type == "cuda")
    dtype = next(encoder.parameters()).dtype
    ll = torch.from_numpy(np.stack([chunk.lon, chunk.lat], 1)).to(dtype)
    if device.type == "cuda":
        ll = ll.pin_memory().to(device, non_blocking=True)
    return to_host(encoder(ll), out_dtype, on_device=device.type == "cuda")


def to_host(emb: torch.Tensor, out_dtype: str, on_device: bool):
    """The encoder's output as numpy for the writer. On a GPU it is converted to ``out_dtype``
    there first (int8: codes and scales), so the copy to the host moves 2 (float16) or about 1
    (int8) byte per value instead of 4: that copy, not the encoder, bounds a GPU's throughput.
    On the CPU the conversion is left to the writer thread, which runs beside the encoder."""
    if not on_device or out_dtype == "float32":
        return emb.to("cpu").numpy()
    if out_dtype == "float16":
        return emb.half().to("cpu").numpy()
    codes, scale = quantize_int8_torch(emb)
    return codes.to("cpu").numpy(), scale.to("cpu").numpy()


def _progress_bar(total: int, initial: int, progress, log=None, chunk_points: int = 0):
    """A tqdm bar on a terminal; elsewhere (nohup, SLURM, CI logs) a line through ``log`` every
    ``LineProgress.EVERY_S`` seconds. ``progress=False``: neither; None: by the terminal."""
    if progress is False:
        return None
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm
            return tqdm(total=total, initial=initial, unit="chunk", desc="embedding", dynamic_ncols=True)
        except ImportError:
            pass
    return None if log is None else LineProgress(total, initial, log, chunk_points)


class LineProgress:
    """Progress as log lines at a steady interval: chunks done, points/s, ETA."""

    EVERY_S = 10.0

    def __init__(self, total: int, initial: int, log, chunk_points: int):
        self.total, self.n, self.log, self.chunk_points = total, initial, log, chunk_points
        self.start_n, self.t0 = initial, time.monotonic()
        self.last = self.t0

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if now - self.last >= self.EVERY_S and self.n < self.total:
            self.last = now
            rate = (self.n - self.start_n) / max(now - self.t0, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            self.log(f"{self.n:,} of {self.total:,} chunks ({100 * self.n / self.total:.0f}%), "
                     f"{rate * self.chunk_points:,.0f} points/s, about {_duration(eta)} left")

    def close(self) -> None:
        pass


def _duration(s: float) -> str:
    if s == float("inf"):
        return "an unknown time"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"

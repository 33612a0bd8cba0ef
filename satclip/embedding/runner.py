"""Streaming embedder: source -> encoder -> sink, chunk by chunk, resumable.

Pipeline: a reader thread pulls chunks from the source (bounded queue), the main thread
encodes them (pinned buffers and non-blocking copies on CUDA), a writer thread writes them;
memory stays bounded whatever N is.

Resume: the output directory holds ``manifest.json`` (written atomically) naming the model
(fingerprint of its weights and config), the source, the chunk size, the format and dtype, and
the chunks already written. Chunk ``i`` of a source always holds the same rows, so a killed
run (even ``kill -9``) resumed with the same command redoes only the missing chunks and ends
with exactly the rows of an uninterrupted run. A resume with another model, source or
settings is refused; an existing output is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from .faults import crash_point
from .sinks import FORMATS, make_sink, quantize_int8, quantize_int8_torch
from .sources import Source

MANIFEST = "manifest.json"
OUT_DTYPES = ("float16", "float32", "int8")


def model_fingerprint(encoder) -> str:
    h = hashlib.sha256(json.dumps(encoder.config(), sort_keys=True).encode())
    for k, v in sorted(encoder.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    crash_point("manifest")
    os.replace(tmp, path)


def _is_run_debris(p: Path) -> bool:
    """A temporary file of this package's atomic writes, left by a killed run."""
    return p.name.startswith(".") and p.name.endswith(".tmp")


def _prepare_output(out: Path, want: dict, overwrite: bool) -> set[int]:
    """Returns the chunk indices already done (resume), after refusing inconsistent cases."""
    mpath = out / MANIFEST
    if out.exists() and not mpath.exists():
        if out.is_dir() and all(_is_run_debris(p) for p in out.iterdir()):
            return set()  # empty, or killed while writing its very first manifest
        raise FileExistsError(f"{out} exists and is not a satclip embedding output (no {MANIFEST}); "
                              "choose another --out (nothing was deleted)")
    if mpath.exists():
        have = json.loads(mpath.read_text())
        if overwrite:
            shutil.rmtree(out)
            return set()
        have.setdefault("precision", "float32")  # manifests written before precision modes existed
        diffs = [k for k in want if k != "done" and have.get(k) != want[k]]
        if diffs and not have.get("done"):
            shutil.rmtree(out)  # a run that wrote no chunk: nothing to keep, nothing to resume
            return set()
        if diffs:
            raise ValueError(f"{out} holds a run with different {', '.join(diffs)}; resume needs the same model, "
                             "inputs and settings. Pass overwrite=True (--overwrite) to replace it")
        return set(have.get("done", []))
    return set()


def run_embedding(encoder, source: Source, out, *, fmt: str = "parquet", out_dtype: str = "float32",
                  device=None, overwrite: bool = False, progress: bool | None = None) -> Path:
    """Embeds every point of ``source`` into ``out`` (a directory); resumes a killed run.

    Args:
        encoder: a ``satclip.LocationEncoder`` (its dtype is kept; float32 is fastest).
        source: a :class:`satclip.embedding.sources.Source` (table, grid, HEALPix, H3, array).
        out: output directory.
        fmt: ``"parquet"``, ``"npy"`` or ``"zarr"``.
        out_dtype: ``"float32"``, ``"float16"`` or ``"int8"`` (per-point scale stored beside the codes).
        device: where to run the encoder (default: the encoder's device).
        overwrite: replace an existing output instead of resuming it.
        progress: progress bar (default: when stderr is a terminal).
    Returns the output directory.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if out_dtype not in OUT_DTYPES:
        raise ValueError(f"out_dtype must be one of {OUT_DTYPES}, got {out_dtype!r}")
    out = Path(out)
    grid_shape = getattr(source, "grid_shape", None) if fmt == "zarr" else None
    if grid_shape and source.chunk_size % grid_shape[1]:
        # grid Zarr chunks are whole rows, written once each: align the source's chunks to them
        source.chunk_size = max(1, source.chunk_size // grid_shape[1]) * grid_shape[1]
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    encoder = encoder.to(device).eval()
    dtype = next(encoder.parameters()).dtype
    dim = encoder.nnet.dim_out
    want = {"format": fmt, "dtype": out_dtype, "dim": dim, "model": model_fingerprint(encoder),
            "model_config": encoder.config(), "precision": getattr(encoder, "precision", "float32"),
            "source": source.describe(), "chunk_size": source.chunk_size}
    done = _prepare_output(out, want, overwrite)
    n_chunks = source.num_chunks
    if len(done) >= n_chunks and n_chunks > 0:  # finished (maybe killed before the last manifest write)
        man = json.loads((out / MANIFEST).read_text())
        if not man.get("complete"):
            _write_json_atomic(out / MANIFEST, dict(man, complete=True))
        return out
    out.mkdir(parents=True, exist_ok=True)
    manifest = dict(want, satclip_version=__version__, num_chunks=n_chunks, done=sorted(done), complete=False)
    _write_json_atomic(out / MANIFEST, manifest)
    needs_n = fmt in ("npy", "zarr")
    sink = make_sink(fmt, out=out, dim=dim, dtype=out_dtype, n=len(source) if needs_n else None,
                     chunk_size=source.chunk_size, grid_shape=grid_shape,
                     metadata={"satclip_version": __version__, "model": want["model"], "model_config": want["model_config"]})
    if sink.created and done:
        # the arrays were (re)created, so no chunk the manifest lists is on disk any more
        done = set()
        manifest["done"] = []
        _write_json_atomic(out / MANIFEST, manifest)

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

    lock = threading.Lock()

    def write(chunk, emb):
        if out_dtype == "int8":
            sink.write(chunk, *(emb if isinstance(emb, tuple) else quantize_int8(emb)))
        else:
            sink.write(chunk, emb.astype(out_dtype, copy=False))
        with lock:
            manifest["done"].append(chunk.index)
            manifest["done"].sort()
            _write_json_atomic(out / MANIFEST, manifest)

    bar = _progress_bar(n_chunks, len(done), progress)
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    pending = []
    try:
        with ThreadPoolExecutor(max_workers=1) as writer, torch.no_grad():
            while True:
                item = q.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                ll = torch.from_numpy(np.stack([item.lon, item.lat], 1)).to(dtype)
                if device.type == "cuda":
                    ll = ll.pin_memory().to(device, non_blocking=True)
                emb = to_host(encoder(ll), out_dtype, on_device=device.type == "cuda")
                pending.append(writer.submit(write, item, emb))
                while len(pending) > 2:  # bounded: at most two chunks waiting to be written
                    pending.pop(0).result()
                if bar is not None:
                    bar.update(1)
            for f in pending:
                f.result()
    finally:
        stop.set()
        if bar is not None:
            bar.close()
    sink.close()
    manifest["complete"] = len(manifest["done"]) == n_chunks
    _write_json_atomic(out / MANIFEST, manifest)
    return out


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


def _progress_bar(total: int, initial: int, progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="chunk", desc="embedding", dynamic_ncols=True)

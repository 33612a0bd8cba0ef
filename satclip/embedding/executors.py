"""Where a run's chunks are encoded and written. An executor gets the :class:`WorkSpec` (encoder,
device, output dtype, format, the writer's spec) and the chunks still to do; it encodes and
writes each, and hands every finished chunk's record to ``record`` (in any order: the manifest
keeps them by index). Two executors share this interface: :class:`LocalExecutor` (here) and
:class:`satclip.embedding.ray_adapter.RayExecutor` (encoder actors on a Ray cluster).

Local pipeline: a reader thread pulls chunks from the source (bounded queue); this thread
encodes them (pinned buffers and non-blocking copies on CUDA, where the output is also converted
before it crosses the bus); ``writers`` threads convert (on the CPU) and write them, each its own
chunk. Memory stays bounded whatever N is: at most ``writers + 2`` chunks are in flight.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .convert import Converted, Scratch, convert
from .durable import SyncBatch
from .formats import OutputFormat, Writer, WriterSpec
from .sources import Chunk


@dataclass(frozen=True)
class WorkSpec:
    """What an executor needs: the encoder and its device, the stored dtype, the format and its
    writer's spec. ``writer`` is the runner's own writer (for executors in this process)."""
    encoder: torch.nn.Module
    device: torch.device
    out_dtype: str
    format: OutputFormat
    spec: WriterSpec
    writer: Writer | None = None
    dirty: SyncBatch | None = None
    writers: int = 1


def encode(encoder, chunk: Chunk, device: torch.device) -> torch.Tensor:
    """The encoder's output for one chunk, where the encoder runs (no gradient)."""
    with torch.no_grad():
        if hasattr(encoder, "encode_chunk"):  # an encoder of other inputs (images): it reads the chunk itself
            return encoder.encode_chunk(chunk)
        dtype = next(encoder.parameters()).dtype
        ll = torch.from_numpy(np.stack([chunk.lon, chunk.lat], 1)).to(dtype)
        if device.type == "cuda":
            ll = ll.pin_memory().to(device, non_blocking=True)
        return encoder(ll)


def hand_over(emb: torch.Tensor, out_dtype: str):
    """What the encoding thread hands to a writer: on a GPU the converted values, already on the
    host (the copy moves the stored bytes, not float32); on the CPU the float32 output itself,
    converted by the writer thread beside the encoder."""
    if emb.device.type != "cpu":
        return convert(emb, out_dtype)
    return emb


def write_one(writer: Writer, chunk: Chunk, payload, out_dtype: str, scratch: Scratch | None = None) -> dict:
    """Converts (if not yet) and writes one chunk; returns its record."""
    data = payload if isinstance(payload, Converted) else convert(payload, out_dtype, scratch, threads=1)
    try:
        return writer.write(chunk, data)
    except OSError as exc:
        exc.chunk_index = chunk.index  # for the runner's message (a full disk names the chunk)
        raise


class LocalExecutor:
    """Reader thread -> encoder (the calling thread) -> ``writers`` writer threads."""

    def __init__(self, writers: int | None = None):
        self.writers = writers

    def run(self, work: WorkSpec, chunks, record: Callable, bar, interrupted) -> None:
        n_writers = self.writers or work.writers
        q: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()
        scratch = Scratch()

        def reader():
            try:
                for chunk in chunks:
                    while not stop.is_set():
                        try:
                            q.put(chunk, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(None)
            except BaseException as exc:  # noqa: BLE001  (re-raised in the encoding thread)
                q.put(exc)

        def write(chunk, payload):
            record(chunk, write_one(work.writer, chunk, payload, work.out_dtype, scratch))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        pending: set = set()
        try:
            with ThreadPoolExecutor(max_workers=n_writers, thread_name_prefix="satclip-writer") as pool:
                try:
                    while True:
                        item = q.get()
                        if item is None:
                            break
                        if isinstance(item, BaseException):
                            raise item
                        payload = hand_over(encode(work.encoder, item, work.device), work.out_dtype)
                        pending.add(pool.submit(write, item, payload))
                        while len(pending) > n_writers:  # bounded: a chunk waits only while every writer is busy
                            done, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for f in done:
                                f.result()
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
                except BaseException:
                    stop.set()
                    for f in pending:  # let the writers finish (they hold the output open), then raise
                        f.exception()
                    raise
        finally:
            stop.set()
            if bar is not None:
                bar.close()

"""Embedding on a Ray cluster (optional: ``pip install "ray[data]"``, imported lazily):
``satclip embed ... --ray [ADDRESS]`` or ``run_embedding(..., executor=RayExecutor(...))``.

The driver (the process that runs the command) does what a local run does: it cuts the source
into the same chunks (same ids and boundaries), creates the output, keeps the manifest and
resumes; only encoding and writing move. Each chunk goes to an encoder actor (the encoder is
shipped once per actor through the object store; one GPU per actor where the cluster has
GPUs), which encodes it and writes its shard with the formats' durable writes (Parquet: a
temporary file renamed into place; Zarr / npy: the chunk's own region), then returns the
shard's record; the driver records it in the manifest. So:

* the output, manifest, dtypes and metadata are a local run's (a run started locally can be
  finished on Ray and the reverse; ``--verify`` works on either), and the rows of every shard are
  the local run's, in the same order;
* exactly once: a shard is recorded only after its file is complete; an actor that dies
  mid-shard is restarted by Ray, which sends it the chunk again (its half-written temporary
  file is replaced, never recorded); a driver killed with ``kill -9`` resumes with the same command, and
  chunks written but not yet recorded are written again over themselves.

The output directory must be on a file system every node sees (NFS, a cluster file system, or
one machine), as for any Ray job that writes files.
"""

from __future__ import annotations

import os
import time

from .durable import SyncBatch
from .executors import WorkSpec, encode, hand_over, write_one
from .formats import WriterSpec

def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError('--ray needs Ray: pip install "ray[data]"') from None
    return ray


class _ShardWriter:
    """The actor: the encoder (loaded once), a writer over the driver's output; one chunk per call."""

    def __init__(self, encoder, fmt: str, spec: WriterSpec, out_dtype: str, device: str, threads: int | None):
        import torch

        from . import formats

        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.encoder = encoder.to(self.device).eval()
        self.dirty = SyncBatch()
        self.writer = formats.get(fmt).open_writer(spec, self.dirty)
        self.out_dtype = out_dtype
        self.out = spec.folder

    def describe(self) -> dict:
        """Which satclip this actor runs: the driver refuses actors whose kernels differ from its own."""
        from .. import ops

        return {"pid": os.getpid(), "package": os.path.dirname(os.path.dirname(__file__)),
                "compiled": ops.extension_loaded()}

    def write(self, chunk) -> tuple[int, dict]:
        payload = hand_over(encode(self.encoder, chunk, self.device), self.out_dtype)
        rec = write_one(self.writer, chunk, payload, self.out_dtype)
        self.dirty.sync()  # the record must describe bytes and directory entries on stable storage
        return chunk.index, rec


class RayExecutor:
    """Runs a :func:`satclip.embedding.run_embedding` on Ray encoder actors.

    Args:
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``) or None
            to start a local Ray instance (or use the one this process already joined).
        actors: encoder actors (default: one per GPU on a GPU cluster, else 2).
        cpus_per_actor: CPUs each actor reserves (and its torch threads); leave some for Ray.
        gpus_per_actor: default 1 where the cluster has GPUs, else 0.
        threads: torch threads per CPU actor (default: this process's count). The same count as
            the local run keeps the rows bit-identical to it: the BLAS behind the hidden layers
            rounds small chunks differently with other thread counts (1e-6, measured: a 6-point
            chunk with 1 and 2 threads).
        in_flight: chunks queued per actor (2: one encoding, one waiting).
        max_retries: times a chunk is sent again after its actor died.
    """

    def __init__(self, address: str | None = None, actors: int | None = None, cpus_per_actor: float = 1,
                 gpus_per_actor: float | None = None, threads: int | None = None, in_flight: int = 2,
                 max_retries: int = 3):
        self.address, self.actors, self.cpus, self.threads = address, actors, cpus_per_actor, threads
        self.gpus, self.in_flight, self.max_retries = gpus_per_actor, in_flight, max_retries
        self.pids: list[int] = []
        self.startup_s = 0.0

    def _init(self):
        ray = _ray()
        if not ray.is_initialized():
            kw = {"address": self.address} if self.address else {}
            try:
                ray.init(include_dashboard=False, log_to_driver=False, **kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if not self.address:
                    raise
                raise ValueError(f"--ray {self.address}: no Ray cluster reachable there "
                                 f"({str(exc).splitlines()[0][:160]}); start one with `ray start --head` (then "
                                 "--ray auto), give its address (--ray HOST:6379 or ray://HOST:10001), or run "
                                 "--ray alone for a local Ray instance") from None
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.gpus is None:
            self.gpus = 1 if gpus >= 1 else 0
        if self.actors is None:
            self.actors = int(gpus) if self.gpus and gpus >= 1 else 2
        if self.actors < 1:
            raise ValueError(f"actors must be >= 1, got {self.actors}")
        return ray

    def _check_actors(self, described: list, actors, ray) -> None:
        """Rows are only the local run's, bit for bit, if the actors run the same kernels: an
        actor that imported another satclip (a source checkout in the driver's working
        directory, which Ray puts first on the workers' path) is refused, named."""
        from .. import ops

        self.pids = [d["pid"] for d in described]
        here = {"package": os.path.dirname(os.path.dirname(__file__)), "compiled": ops.extension_loaded()}
        bad = [d for d in described if d["compiled"] != here["compiled"]]
        if bad:
            for a in actors:
                ray.kill(a)
            raise ValueError(f"the Ray actors run satclip from {bad[0]['package']} (compiled kernels: "
                               f"{bad[0]['compiled']}), this process from {here['package']} (compiled kernels: "
                               f"{here['compiled']}): their rows would differ from a local run's. Ray puts the "
                               "driver's working directory first on the workers' path: run from a directory that "
                               "holds no satclip source tree, or install the same build on every node")

    def run(self, work: WorkSpec, chunks, record, bar, interrupted) -> None:
        ray = self._init()
        encoder = work.encoder
        device = "cuda" if self.gpus else "cpu"
        import torch

        threads = (self.threads or torch.get_num_threads()) if device == "cpu" else None
        # A dead actor is restarted by Ray and the chunk it held is sent to it again (at most
        # max_retries times): writing a shard twice writes the same bytes over themselves.
        # max_concurrency: an actor takes its in-flight chunks on threads, so that one encodes
        # while the other is written (torch and pyarrow release the GIL), as the local pipeline
        cls = ray.remote(_ShardWriter).options(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=-1,
                                               max_task_retries=self.max_retries, max_concurrency=self.in_flight)
        t0 = time.perf_counter()
        enc_ref = ray.put(encoder.to("cpu"))
        actors = [cls.remote(enc_ref, work.format.name, work.spec, work.out_dtype, device, threads)
                  for _ in range(self.actors)]
        self._check_actors(ray.get([a.describe.remote() for a in actors]), actors, ray)
        self.startup_s = time.perf_counter() - t0  # actors started, model loaded: paid once per run
        pending: dict = {}  # object ref -> (chunk, actor index)
        load = [0] * len(actors)

        def submit(chunk):
            k = min(range(len(actors)), key=load.__getitem__)
            load[k] += 1
            pending[actors[k].write.remote(chunk)] = (chunk, k)

        def collect() -> None:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                chunk, k = pending.pop(ref)
                load[k] -= 1
                try:
                    _, rec = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                    raise RuntimeError(f"chunk {chunk.index}: its encoder actor died {self.max_retries + 1} times "
                                       f"({type(exc).__name__}); the chunks written so far are recorded: rerun the "
                                       "same command to resume") from None
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                record(chunk, rec)
                if bar is not None:
                    bar.update(1)

        try:
            for chunk in chunks:
                while len(pending) >= self.in_flight * len(actors):
                    collect()
                submit(chunk)
            while pending:
                collect()
        except KeyboardInterrupt:
            for ref in list(pending):
                ray.cancel(ref, force=True)
            raise interrupted() from None
        finally:
            for a in actors:
                ray.kill(a)
            if bar is not None:
                bar.close()

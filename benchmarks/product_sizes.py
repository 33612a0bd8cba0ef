"""Size on disk and the writers' time of every output format x compression x dtype on the
0.25-degree grid (1,036,800 points, 256-d). The embeddings are real (the bundled model's, computed
once before the timings), handed out by a stand-in encoder that looks each point's row up, so the
sizes are those of real embeddings (whose spatial smoothness a compressor may use) and the time is
the output path's alone: read the grid, convert, write, commit (COG: its GDAL passes at the end
included, reported apart). A stand-in that repeats one block of rows (``bench_pipeline.py``'s)
would flatter compressors that see across chunks, as a COG tile does.

    python benchmarks/product_sizes.py benchmarks/results/product-sizes.json > benchmarks/results/product-sizes.md

The JSON (rows, machine, date, commit) is what the docs' performance page renders.

"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import CHUNK, output_bytes  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import satclip  # noqa: E402

from satclip.embedding import sources as S  # noqa: E402
from satclip.embedding.formats.cog import CogWriter  # noqa: E402
from satclip.embedding.runner import run_embedding  # noqa: E402

FINALISE: list[float] = []  # seconds of CogWriter.finalize (the GDAL pass) in the current run
_cog_finalize = CogWriter.finalize


def _timed_finalize(self):
    t = time.perf_counter()
    _cog_finalize(self)
    FINALISE.append(time.perf_counter() - t)


CogWriter.finalize = _timed_finalize

STEP = float(os.environ.get("PRODUCT_SIZES_STEP", "0.25"))
ROUNDS = 2


class Lookup(torch.nn.Module):
    """The bundled model's embeddings of every cell of the grid, computed once; ``forward`` returns
    the rows of the points it is given (found from their cell centres), at the cost of a gather."""

    def __init__(self, step: float):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        enc = satclip.default_model()
        self.dim_out, self.precision, self.step = enc.dim_out if hasattr(enc, "dim_out") else 256, "float32", step
        self.ncols = int(round(360 / step))
        grid = S.GridSource(step, chunk_points=1 << 20)
        rows = []
        with torch.no_grad():
            for c in grid.chunks():
                rows.append(enc(torch.from_numpy(np.stack([c.lon, c.lat], 1)).float()))
        self.table = torch.cat(rows)
        c = next(iter(grid.chunks()))  # the lookup finds each point's own row
        assert torch.equal(self(torch.from_numpy(np.stack([c.lon, c.lat], 1)).float()), self.table[:len(c.lon)])

    def config(self) -> dict:
        return {"le_type": "lookup of the bundled model's embeddings", "pe_type": "none", "embed_dim": self.dim_out}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        col = ((x[:, 0].double() + 180.0) / self.step - 0.5).round().long()
        row = ((x[:, 1].double() + 90.0) / self.step - 0.5).round().long()
        return self.table[row * self.ncols + col]


def one(standin, grid, root: Path, fmt: str, dtype: str, compression) -> tuple[float, int, float]:
    """Best-of-ROUNDS wall seconds, bytes on disk, and COG's finalisation seconds (else 0)."""
    best, size, fin = float("inf"), 0, 0.0
    for r in range(ROUNDS):
        out = root / f"{fmt}-{dtype}-{compression}-{r}"
        os.sync()
        FINALISE.clear()
        t = time.perf_counter()
        run_embedding(standin, grid, out, fmt=fmt, out_dtype=dtype, progress=False, compression=compression)
        took = time.perf_counter() - t
        size = output_bytes(out)
        if took < best:
            best, fin = took, sum(FINALISE)
        shutil.rmtree(out)
        shutil.rmtree(out.parent / f".{out.name}.satclip")  # its run state (manifest, STAC) too
    return best, size, fin


def main() -> None:
    import pyarrow
    import zarr
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    grid = S.GridSource(STEP, chunk_points=CHUNK)
    standin = Lookup(STEP)
    n_chunks = -(-len(grid) // CHUNK)
    flags = next((ln.split(":", 1)[1].split() for ln in open("/proc/cpuinfo") if ln.startswith("flags")), [])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True).stdout.strip())
    record = {"machine": {"cpu": cpu, "cores": os.cpu_count(),
                          "flags": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]},
              "date": time.strftime("%Y-%m-%d"), "commit": commit, "dirty": dirty, "step": STEP,
              "points": len(grid), "chunks": n_chunks, "command": "python " + " ".join(sys.argv), "rows": []}
    print(f"# Output sizes and writer times, {STEP}-degree grid ({len(grid):,} points, 256-d)\n")
    print(f"Machine: {cpu}, {os.cpu_count()} logical CPUs; python {platform.python_version()}, pyarrow "
          f"{pyarrow.__version__}, zarr {zarr.__version__}. Command: `python {' '.join(sys.argv)}`. "
          f"The bundled model's embeddings looked up by a stand-in encoder, {n_chunks} chunks of {CHUNK:,} points, best of {ROUNDS} runs, "
          "page cache synced before each.\n")
    print("| format | dtype | compression | size MB | vs none | run s | ms per chunk |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        for fmt in ("parquet", "zarr", "npy", "cog"):
            for dtype in ("float32", "float16", "int8"):
                base = None
                for comp in ("none", "zstd"):
                    if fmt == "npy" and comp != "none":
                        continue  # npy has no compression
                    took, size, fin = one(standin, grid, Path(d), fmt, dtype, comp)
                    base = base or size
                    note = f" (GDAL pass {fin:.1f} s)" if fin else ""
                    print(f"| {fmt} | {dtype} | {comp} | {size / 1e6:,.1f} | {size / base:.2f} | "
                          f"{took:.2f}{note} | {took / n_chunks * 1e3:.1f} |", flush=True)
                    record["rows"].append({"format": fmt, "dtype": dtype, "compression": comp,
                                           "bytes": size, "seconds": took, "finalise_seconds": fin})
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()

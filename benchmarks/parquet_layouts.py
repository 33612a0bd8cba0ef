"""How to store a [N, D] embedding in Parquet: the writer's time per 16,384 x 256 chunk for each
layout, and what each reader sees of it. The list column (FixedSizeList, what the package
writes) costs Arrow a repetition and a definition level per value; the alternatives that skip
them read back as bytes or as D separate columns, not as one list or array per row.

    python benchmarks/parquet_layouts.py > benchmarks/results/parquet-layouts.md
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N, D = 16384, 256
PLAIN = dict(compression="none", use_dictionary=False, write_statistics=False)


def layouts(values: np.ndarray) -> dict:
    vt = pa.from_numpy_dtype(values.dtype)
    flat = pa.Array.from_buffers(vt, values.size, [None, pa.py_buffer(values)])
    fsl_required = pa.FixedSizeListArray.from_arrays(flat, type=pa.list_(pa.field("element", vt, nullable=False), D))
    return {
        "FixedSizeList, nullable values": pa.table({"embedding": pa.FixedSizeListArray.from_arrays(flat, D)}),
        "FixedSizeList, required values (written)": pa.Table.from_arrays(
            [fsl_required], schema=pa.schema([pa.field("embedding", fsl_required.type, nullable=False)])),
        "List": pa.table({"embedding": pa.ListArray.from_arrays(pa.array(np.arange(0, N * D + 1, D, dtype=np.int32)),
                                                                flat)}),
        "FixedSizeBinary (the row's bytes)": pa.table({"embedding": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(D * values.itemsize), N, [None, pa.py_buffer(values)])}),
        f"{D} scalar columns": pa.table({f"e{j:03d}": np.ascontiguousarray(values[:, j]) for j in range(D)}),
    }


def best_ms(fn, rounds: int = 5) -> float:
    b = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t)
    return b * 1e3


def readers_see(path: Path) -> dict:
    out = {}
    import pandas as pd
    df = pd.read_parquet(path)
    cell = df.iloc[0, 0]
    out["pandas"] = f"{df.shape[1]} column(s); a cell is {type(cell).__name__}" + (
        f" of {cell.dtype}" if hasattr(cell, "dtype") else "")
    try:
        import polars as pl
        sch = pl.read_parquet(path).schema
        out["polars"] = f"{len(sch)} column(s); {next(iter(sch.values()))}"
    except Exception as exc:  # noqa: BLE001
        out["polars"] = f"error: {type(exc).__name__}"
    try:
        import duckdb
        out["DuckDB"] = str(duckdb.sql(f"SELECT * FROM '{path}' LIMIT 1").types[0])
    except Exception as exc:  # noqa: BLE001
        out["DuckDB"] = f"error: {type(exc).__name__}"
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print("# Parquet layouts of a [16,384 x 256] embedding chunk\n")
    print(f"Machine: {cpu}, {os.cpu_count()} logical CPUs; pyarrow {pa.__version__}; python {platform.python_version()}."
          f" Command: `python {' '.join(sys.argv)}`. Best of 5 `pq.write_table` calls into memory (no compression, "
          "dictionary or statistics), one thread.\n")
    print("| values | layout | write ms | pandas sees | polars sees | DuckDB sees |\n| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        for dtype in (np.float32, np.float16):
            values = (rng.standard_normal((N, D)) / 4).astype(dtype)
            for name, table in layouts(values).items():
                ms = best_ms(lambda: pq.write_table(table, pa.BufferOutputStream(), **PLAIN))
                path = Path(d) / "t.parquet"
                pq.write_table(table.slice(0, 4), path, **PLAIN)
                seen = readers_see(path)
                print(f"| {np.dtype(dtype).name} | {name} | {ms:.1f} | {seen['pandas']} | {seen['polars']} | "
                      f"{seen['DuckDB']} |")


if __name__ == "__main__":
    main()

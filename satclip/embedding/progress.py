"""Progress of a run: a tqdm bar on a terminal; elsewhere (nohup, SLURM, CI logs) a line through
the run's log every ``LineProgress.EVERY_S`` seconds (chunks, points/s, ETA)."""

from __future__ import annotations

import sys
import time


def progress_bar(total: int, initial: int, progress, log=None, chunk_points: int = 0):
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
                     f"{rate * self.chunk_points:,.0f} points/s, about {duration(eta)} left")

    def close(self) -> None:
        pass


def duration(s: float) -> str:
    if s == float("inf"):
        return "an unknown time"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def human_bytes(n: float) -> str:
    units = ("bytes", "KB", "MB", "GB", "TB", "PB", "EB")
    k = 0
    while n >= 1000 and k < len(units) - 1:
        n, k = n / 1000, k + 1
    return f"{n:,.0f} bytes" if k == 0 else f"{n:,.1f} {units[k]}"

"""What is legal in an input but probably not meant, counted over a run's chunks and said at the end."""

from __future__ import annotations

import threading

import numpy as np


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

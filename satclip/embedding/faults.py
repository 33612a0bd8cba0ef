"""Deterministic crash points for the resume tests (``SATCLIP_CRASH_AT=site:N``).

``crash_point(site)`` is called at the moments where a killed run is hardest to resume: inside
a shard write (``shard``: part of a chunk's data on disk), between the files of a new output
(``create``: some arrays of an npy/Zarr output exist, others not) and inside a manifest write
(``manifest``: the temporary file written, not yet renamed). At the N-th call of the named site
(1-based) the process sends itself ``SIGKILL``: a real ``kill -9``, no ``finally``, no flush,
no atexit (or ``SIGINT`` with ``site:N:INT``: a Ctrl-C at that moment). Unset (always, outside the tests) it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "SATCLIP_CRASH_AT"
_counts: dict = {}


def crash_point(site: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    want, _, rest = spec.partition(":")
    if want != site:
        return
    n, _, sig = rest.partition(":")
    _counts[site] = _counts.get(site, 0) + 1
    if _counts[site] == int(n or 1):
        # KILL by default; INT (``site:N:INT``) stands for a Ctrl-C arriving at that moment
        os.kill(os.getpid(), signal.SIGINT if sig == "INT" else signal.SIGKILL)

"""Durable chunks: a chunk is in the manifest only once its bytes and its directory entry are on
stable storage. The file-system calls of a run are recorded in order (every fsync / fdatasync
with the path it synced and the size the file had then, every rename, every manifest written with
the chunks it records), and for each chunk the order must be: its data written (the file at its
final size when synced) -> fsynced -> renamed into place (Parquet shards, Zarr chunk files) ->
its directory fsynced -> the first manifest that records it."""

import json
import os
from pathlib import Path

import pytest
import torch

import satclip
from satclip.embedding import durable, sources as S, state
from satclip.embedding.formats import npy as npy_format
from satclip.embedding.runner import run_embedding

pytest.importorskip("pyarrow")


@pytest.fixture
def calls(monkeypatch):
    """Every fsync/fdatasync (by path), rename and manifest write of the run, in order."""
    log = []

    def path_of(fd):
        return os.readlink(f"/proc/self/fd/{fd}")

    real_fsync, real_fdatasync, real_replace = os.fsync, os.fdatasync, os.replace

    def synced(real):
        def sync(fd):
            path = path_of(fd)
            if os.path.isfile(path):  # what the file holds when it is synced
                log.append(("size", path, os.fstat(fd).st_size))
            log.append(("fsync", path))
            return real(fd)
        return sync
    monkeypatch.setattr(os, "fsync", synced(real_fsync))
    monkeypatch.setattr(os, "fdatasync", synced(real_fdatasync))

    def replace(src, dst):
        real_replace(src, dst)
        log.append(("rename", str(src), str(dst)))
        if Path(dst).name == state.MANIFEST:
            man = json.loads(Path(dst).read_text())
            log.append(("manifest", sorted(man["done"])))
    monkeypatch.setattr(os, "replace", replace)
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda src, dst: (real_rename(src, dst), log.append(("rename", str(src), str(dst))))[0])

    real_pwrite = durable.BlockFile.pwrite

    def pwrite(self, data, offset):
        real_pwrite(self, data, offset)
        log.append(("write", str(self.path)))
    monkeypatch.setattr(durable.BlockFile, "pwrite", pwrite)
    return log


def _first(log, pred, after=-1):
    return next(i for i, e in enumerate(log) if i > after and pred(e))


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(4, 16, 2, 8).float().eval()


@pytest.mark.parametrize("fmt", ["parquet", "zarr"])
def test_write_fsync_rename_fsync_dir_then_manifest(tmp_path, encoder, calls, fmt):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    out = run_embedding(encoder, S.GridSource(10.0, chunk_points=72), tmp_path / "o", fmt=fmt, progress=False)
    rows = state.staging_dir(out)  # where the run wrote (committed to `out` at the end)
    for i in range(9):
        if fmt == "parquet":
            final = str(rows / f"part-{i:06d}.parquet")
        else:
            final = str(rows / "embedding" / f"c.{i}.0.0")
        tmp = str(state.state_dir(out) / "tmp" / ("." + "__".join(Path(final).relative_to(rows).parts) + ".tmp"))
        f = _first(calls, lambda e: e == ("fsync", tmp))
        assert calls[f - 1] == ("size", tmp, (out / Path(final).relative_to(rows)).stat().st_size)  # all its bytes
        r = _first(calls, lambda e: e[0] == "rename" and e[1:] == (tmp, final), f)
        d = _first(calls, lambda e: e == ("fsync", str(Path(final).parent)), r)
        m = _first(calls, lambda e: e[0] == "manifest" and i in e[1])
        assert f < r < d < m, (i, f, r, d, m)
    # the commit: the staging folder renamed to the output, its parent synced, then the manifest
    c = _first(calls, lambda e: e[0] == "rename" and e[2] == str(out))
    assert _first(calls, lambda e: e == ("fsync", str(out.parent)), c) < _first(
        calls, lambda e: e[0] == "rename" and e[2].endswith(state.MANIFEST), c)


def test_npy_rows_are_synced_before_their_manifest(tmp_path, encoder, calls):
    """npy rows are written in place, so the files are fdatasynced (per batch) before the manifest
    that records them: a manifest recording k chunks comes after a sync of each file that itself
    comes after k of that file's chunk writes."""
    out = run_embedding(encoder, S.GridSource(10.0, chunk_points=72), tmp_path / "o", fmt="npy", progress=False)
    for name in ("embeddings.npy", "ids.npy", "lonlat.npy"):
        path = str(state.staging_dir(out) / name)
        assert sum(e == ("write", path) for e in calls) == 9
        for m, e in enumerate(calls):
            if e[0] != "manifest":
                continue
            syncs = [i for i in range(m) if calls[i] == ("fsync", path)]
            synced_writes = sum(1 for i in range(syncs[-1] if syncs else 0) if calls[i] == ("write", path))
            assert len(e[1]) <= synced_writes, (name, m, e)
    assert npy_format.HEADER % durable.PAGE == 0  # whole chunks start page-aligned (O_DIRECT)

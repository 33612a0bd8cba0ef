"""An output that cannot rot silently: a truncated or deleted shard is found on the next run (and
every byte with --verify) and recomputed; two runs at once are refused with the other's pid; a
full disk ends with a clear message, no partial shard and a manifest that resumes exactly."""

import subprocess

import numpy as np
import pytest
import torch

import satclip
from conftest import tmpfs
from satclip.embedding import sources as S
from satclip.embedding.reader import read_embeddings
from satclip.embedding.runner import DiskFull, run_embedding
from satclip.embedding.state import OutputLock, OutputLocked, data_dir, read_manifest, state_dir

pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(4, 16, 2, 64).float().eval()


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(read_embeddings(a), read_embeddings(b)))


@pytest.mark.parametrize("fmt", ["parquet", "npy", "zarr"])
def test_damaged_chunks_are_found_and_recomputed(tmp_path, encoder, fmt):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    src = lambda: S.GridSource(10.0, chunk_points=72)  # 9 chunks of 2 grid rows
    clean = run_embedding(encoder, src(), tmp_path / "clean", fmt=fmt, progress=False)
    out = run_embedding(encoder, src(), tmp_path / "out", fmt=fmt, progress=False)
    logs = []
    if fmt == "parquet":
        part = out / "part-000003.parquet"
        part.write_bytes(part.read_bytes()[:-100])                 # truncated after the run
        (out / "part-000005.parquet").unlink()                     # lost
        run_embedding(encoder, src(), out, fmt=fmt, progress=False, log=logs.append)  # a plain rerun sees it
        assert any("2 of 9 chunks written earlier are damaged or missing" in m for m in logs), logs
        part = out / "part-000006.parquet"  # one byte of a data page changed, same size
        data = bytearray(part.read_bytes())
        data[len(data) // 2] ^= 0xFF
        part.write_bytes(bytes(data))
        import pyarrow.parquet as pq
        with pytest.raises(OSError, match="(?i)crc|checksum"):  # any reader that checks the page CRCs sees it
            pq.read_table(part, page_checksum_verification=True)
        logs.clear()
        run_embedding(encoder, src(), out, fmt=fmt, progress=False, log=logs.append)
        assert any("intact" in m for m in logs), logs  # sizes cannot tell
        logs.clear()
        run_embedding(encoder, src(), out, fmt=fmt, progress=False, verify=True, log=logs.append)
        assert any("1 of 9 chunks written earlier are damaged" in m for m in logs), logs
    else:
        # same size, other bytes: only reading back finds it (--verify)
        if fmt == "npy":
            emb = np.load(out / "embeddings.npy", mmap_mode="r+")
            emb[300:310] = 0
            emb.flush()
        else:
            import zarr
            zarr.open_group(str(out), mode="r+")["embedding"][4] = 0  # grid row 4 = chunk 2
        run_embedding(encoder, src(), out, fmt=fmt, progress=False, log=logs.append)
        assert any("intact" in m for m in logs) and not _same(out, clean)  # sizes cannot tell
        logs.clear()
        run_embedding(encoder, src(), out, fmt=fmt, progress=False, verify=True, log=logs.append)
        assert any("1 of 9 chunks written earlier are damaged" in m for m in logs), logs
    assert any("rows written of 648 expected" in m for m in logs), logs
    assert _same(out, clean)


def test_second_run_on_the_same_output_is_refused(tmp_path, encoder):
    out = tmp_path / "o"
    out.mkdir()
    with OutputLock(out):
        with pytest.raises(OutputLocked, match=r"being written by another run \(pid \d+ on "):
            run_embedding(encoder, S.GridSource(30.0), out, progress=False)
    run_embedding(encoder, S.GridSource(30.0), out, progress=False)  # free again


def test_lock_of_a_killed_run_is_taken_over(tmp_path, encoder):
    import sys
    out = tmp_path / "o"
    out.mkdir()
    code = ("import sys, os, signal; from pathlib import Path; from satclip.embedding.state import OutputLock; "
            "OutputLock(Path(sys.argv[1])).acquire(); os.kill(os.getpid(), signal.SIGKILL)")
    assert subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path).returncode == -9
    assert "pid" in (state_dir(out) / "lock").read_text()  # the dead run's note is still there
    run_embedding(encoder, S.GridSource(30.0), out, progress=False)
    assert read_manifest(out)["complete"]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (needs root; skipped otherwise), enlarged by calling the returned function."""
    with tmpfs(tmp_path / "disk", "size=1m") as mnt:
        yield mnt, lambda: subprocess.run(["mount", "-o", "remount,size=16m", str(mnt)], check=True)


def test_an_output_larger_than_the_free_space_is_refused_up_front(tmp_path, small_disk):
    mnt, _ = small_disk
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 256).float().eval()
    with pytest.raises(ValueError, match=r"the output would take about 2\.8 MB \(2,592 rows x 1074 bytes\), but .* has "
                                         r".* free; .*Nothing was written"):
        run_embedding(enc, S.GridSource(5.0), mnt / "o", progress=False)
    assert not (mnt / "o").exists() and not state_dir(mnt / "o").exists()


def test_disk_full_then_resume(tmp_path, encoder, small_disk, monkeypatch):
    """The disk fills up during the run (another writer took the space the estimate counted on)."""
    from satclip.embedding import runner
    monkeypatch.setattr(runner, "_check_space", lambda *a, **k: None)
    mnt, enlarge = small_disk
    src = lambda: S.GridSource(5.0, chunk_points=144)  # 18 chunks of about 150 KB
    torch.manual_seed(0)
    enc = satclip.LocationEncoder(4, 16, 2, 256).float().eval()
    out = mnt / "o"
    with pytest.raises(DiskFull, match=r"no space left on the device of .* while writing chunk \d+ \(\d+ of 18 chunks "
                                       r"are written and kept\); free space and rerun the same command to resume"):
        run_embedding(enc, src(), out, progress=False)
    man = read_manifest(out)
    assert 0 < len(man["done"]) < 18
    rows = data_dir(out, man)  # the unfinished run's rows (its staging folder)
    assert not [p for p in rows.rglob("*") if p.name.endswith(".tmp")]  # no partial shard left
    assert sorted(int(p.name[5:11]) for p in rows.glob("part-*.parquet")) == man["done"]
    enlarge()
    run_embedding(enc, src(), out, progress=False)
    assert _same(out, run_embedding(enc, src(), tmp_path / "clean", progress=False))

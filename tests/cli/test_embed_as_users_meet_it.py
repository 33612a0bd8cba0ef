"""`satclip embed` as users meet it: every failure a sentence that names the file, column, row or
flag and what to do (no traceback), nothing a user owns deleted, outputs that say when they are
incomplete, and progress when stderr is not a terminal."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tmpfs
from satclip.cli import main
from satclip.embedding.state import state_dir

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pcsv = pytest.importorskip("pyarrow.csv")
SATCLIP = str(Path(sys.executable).with_name("satclip"))


def _fails(args, match):
    with pytest.raises(SystemExit) as exc:
        main(["embed", *args])
    msg = str(exc.value.code)
    assert msg.startswith("satclip embed: "), msg
    assert match in msg, msg
    return msg


def test_overwrite_never_deletes_a_users_files(tmp_path):
    out = tmp_path / "o"
    assert main(["embed", "--grid", "30", "--out", str(out), "--quiet"]) == 0
    (out / "README.txt").write_text("my notes")
    (out / "analysis").mkdir()
    (out / "analysis" / "fig.txt").write_text("a figure")
    shards = sorted(p.name for p in out.glob("part-*.parquet"))
    msg = _fails(["--grid", "30", "--out", str(out), "--overwrite", "--quiet"],
                 "holds files this package did not write (README.txt, analysis/)")
    assert "Nothing was deleted" in msg
    assert (out / "README.txt").read_text() == "my notes" and (out / "analysis" / "fig.txt").exists()
    assert sorted(p.name for p in out.glob("part-*.parquet")) == shards
    (out / "README.txt").unlink()
    (out / "analysis" / "fig.txt").unlink()
    (out / "analysis").rmdir()
    assert main(["embed", "--grid", "30", "--out", str(out), "--overwrite", "--quiet"]) == 0


def test_a_nan_in_a_csv_is_named_by_file_row_and_id_and_can_be_skipped(tmp_path):
    n = 150_010
    lon = np.linspace(-170, 170, n)
    lat = np.linspace(-80, 80, n)
    lat[150_000] = np.nan
    csv = tmp_path / "pts.csv"
    pcsv.write_csv(pa.table({"site": [f"s{i}" for i in range(n)], "lon": lon, "lat": lat}), csv)
    _fails(["--points", str(csv), "--id-col", "site", "--chunk-points", "65536", "--out", str(tmp_path / "a"),
            "--quiet"], f"{csv}: row 150000 (id s150000): NaN or inf coordinate")
    from satclip.embedding.reader import IncompleteOutput, read_embeddings
    with pytest.raises(IncompleteOutput, match="incomplete: 2 of 3 chunks written"):  # the chunks before it stay
        read_embeddings(tmp_path / "a")
    assert main(["embed", "--points", str(csv), "--id-col", "site", "--on-invalid", "skip", "--out",
                 str(tmp_path / "b"), "--quiet"]) == 0
    t = pq.read_table(tmp_path / "b")
    assert t.num_rows == n - 1 and "s150000" not in set(t.column("id").to_pylist())
    man = json.loads((state_dir(tmp_path / "b") / "manifest.json").read_text())
    skipped = [s for r in man["shards"].values() for s in r.get("skipped", [])]
    assert skipped == ["row 150000 (id s150000): NaN or inf coordinate (lon=150.00180005760183, lat=nan)"] or (
        len(skipped) == 1 and skipped[0].startswith("row 150000 (id s150000): NaN"))
    _fails(["--points", str(csv), "--on-invalid", "skip", "--format", "npy", "--out", str(tmp_path / "c"), "--quiet"],
           "--on-invalid skip needs --format parquet")


def test_a_string_in_a_coordinate_column_and_an_empty_csv_are_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat\n10,20\nabc,30\n")
    _fails(["--points", str(bad), "--out", str(tmp_path / "a"), "--quiet"],
           f"{bad}: column 'lon', row 1: 'abc' is not a number")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _fails(["--points", str(empty), "--out", str(tmp_path / "b"), "--quiet"], f"{empty}: empty file (no header line)")


def test_an_input_with_no_rows_gives_an_empty_dataset_with_the_full_schema(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    src = tmp_path / "none.parquet"
    pq.write_table(pa.table({"lon": pa.array([], pa.float64()), "lat": pa.array([], pa.float64()),
                             "name": pa.array([], pa.string())}), src)
    out = tmp_path / "o"
    assert main(["embed", "--points", str(src), "--keep-cols", "name", "--out", str(out), "--quiet"]) == 0
    t = pq.read_table(out)
    assert t.num_rows == 0 and t.column_names == ["id", "lon", "lat", "geometry", "bbox", "embedding", "name"]
    assert duckdb.sql(f"SELECT count(*) FROM '{out}/*.parquet'").fetchall() == [(0,)]


def test_a_grid_that_cannot_fit_the_disk_is_refused_with_its_size(tmp_path):
    _fails(["--grid", "1e-6", "--out", str(tmp_path / "a"), "--quiet"],
           "the output would take about 69.6 EB (64,800,000,000,000,000 rows x 1074 bytes)")
    _fails(["--grid", "1e-9", "--out", str(tmp_path / "b"), "--quiet"], "grid step 1e-09 gives 6.48e+22 cells")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_missing_checkpoint_paths_and_unreachable_hub_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    _fails(["--checkpoint", "runs/l40", "--grid", "30", "--out", "o", "--quiet"], "checkpoint not found: runs/l40")
    _fails(["--checkpoint", "./l40.ckpt", "--grid", "30", "--out", "o", "--quiet"], "checkpoint not found")
    hub = pytest.importorskip("huggingface_hub")

    def offline(*a, **k):
        raise ConnectionError("no network")
    monkeypatch.setattr(hub, "list_repo_files", offline)
    _fails(["--checkpoint", "microsoft/SatCLIP-ViT16-L40", "--grid", "30", "--out", "o", "--quiet"],
           "fetching it as a Hugging Face repo id failed (ConnectionError: no network); that needs a network")
    assert not (tmp_path / "o").exists()


def test_devices_and_ray_addresses_that_are_not_there(tmp_path):
    import torch
    if not torch.cuda.is_available():
        _fails(["--grid", "30", "--device", "cuda", "--out", str(tmp_path / "a"), "--quiet"],
               "--device cuda but torch sees no CUDA device here")
    _fails(["--grid", "30", "--device", "tpu9", "--out", str(tmp_path / "b"), "--quiet"], "--device 'tpu9'")
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.run([SATCLIP, "embed", "--grid", "30", "--out", str(tmp_path / "c"), "--ray", "auto", "--quiet"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "satclip embed: --ray auto: no Ray cluster reachable there" in proc.stderr


def test_flags_that_do_not_apply_and_suspicious_inputs(tmp_path, capsys):
    _fails(["--grid", "30", "--nest", "--out", str(tmp_path / "a"), "--quiet"], "--nest applies to --healpix")
    src = tmp_path / "p.parquet"
    pq.write_table(pa.table({"site": ["a", "b", "a"], "lon": [400.0, 10.0, 20.0], "lat": [0.0, 5.0, 6.0]}), src)
    assert main(["embed", "--points", str(src), "--id-col", "site", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 points have a longitude outside [-180, 180] (first: 400.0)" in err
    assert "warning: 1 rows repeat an id of an earlier row (first: 'a')" in err


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys):
    from satclip.embedding import runner
    monkeypatch.setattr(runner.LineProgress, "EVERY_S", 0.0)
    assert main(["embed", "--grid", "10", "--chunk-points", "72", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if " chunks (" in l and "points/s" in l]
    assert lines and lines[0].startswith("satclip embed: 1 of 9 chunks (11%), ") and " left" in lines[0]


def test_a_read_only_output_folder_is_a_sentence(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as mnt:
        _fails(["--grid", "30", "--out", str(mnt / "o"), "--quiet"], "is on a read-only file system")


def test_os_errors_become_sentences():
    import errno

    from satclip.cli.embed import os_words
    assert os_words(PermissionError(errno.EACCES, "Permission denied", "/data/o"), "x") == (
        "no permission to write /data/o; choose an --out you can write to (nothing was written)")
    assert "is on a read-only file system" in os_words(OSError(errno.EROFS, "Read-only file system", "/mnt/o"), "x")

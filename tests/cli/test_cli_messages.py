"""What `satclip` says: help and version, one line per refusal in the command's own words
(flags, not Python arguments), Ctrl-C and resume, missing optional packages before any work."""

import os
import signal
import subprocess
import sys

import pytest
import torch

import satclip
from conftest import fault_env
from satclip.cli import main

pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return satclip.save(satclip.LocationEncoder(4, 16, 2, 8), tmp_path_factory.mktemp("c") / "enc.safetensors")


def test_bare_command_prints_help_and_version(capsys):
    assert main([]) == 0
    assert "embed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"satclip {satclip.__version__}"


def test_text_file_as_checkpoint(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    with pytest.raises(SystemExit, match=r"not a SatCLIP checkpoint \(neither a torch checkpoint nor safetensors\)$"):
        main(["embed", "--checkpoint", str(notes), "--grid", "30", "--out", str(tmp_path / "o"), "--quiet"])
    assert not (tmp_path / "o").exists()


def test_messages_use_flag_names(tmp_path, ckpt, capsys):
    out = str(tmp_path / "o")
    assert main(["embed", "--checkpoint", str(ckpt), "--grid", "30", "--out", out]) == 0
    err = capsys.readouterr().err
    assert "in 1 chunk " in err and "1 chunks" not in err
    with pytest.raises(SystemExit, match="Pass --overwrite to replace it$") as e:
        main(["embed", "--checkpoint", str(ckpt), "--grid", "30", "--dtype", "float16", "--out", out])
    assert "overwrite=True" not in str(e.value)
    csv = tmp_path / "p.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="--lon-col/--lat-col"):
        main(["embed", "--checkpoint", str(ckpt), "--points", str(csv), "--out", str(tmp_path / "p")])
    with pytest.raises(SystemExit, match="--keep-cols applies to --points"):
        main(["embed", "--grid", "30", "--keep-cols", "a", "--out", str(tmp_path / "q")])
    # refusals of the library, in flags (the Python API names its keywords: tests/embedding)
    csv.write_text("lon,lat,site\n1,2,a\n")
    with pytest.raises(SystemExit, match=r"--keep-cols needs --format parquet \(--format npy stores embeddings") as e:
        main(["embed", "--points", str(csv), "--keep-cols", "site", "--format", "npy", "--out", str(tmp_path / "r")])
    assert "fmt=" not in str(e.value) and "keep_cols" not in str(e.value)
    with pytest.raises(SystemExit, match="--format npy stores integer ids .* use --format parquet"):
        main(["embed", "--points", str(csv), "--id-col", "site", "--format", "npy", "--out", str(tmp_path / "s")])
    with pytest.raises(SystemExit, match=r"column 'nope' \(--id-col\) not found"):
        main(["embed", "--points", str(csv), "--id-col", "nope", "--out", str(tmp_path / "t")])
    with pytest.raises(SystemExit, match="--writers must be a positive number"):
        main(["embed", "--grid", "30", "--writers", "0", "--out", str(tmp_path / "u")])


def test_missing_optional_package_is_reported_before_any_work(tmp_path, ckpt, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(SystemExit, match=r"--preview needs `pip install matplotlib` \(nothing was run\)"):
        main(["embed", "--checkpoint", str(ckpt), "--grid", "30", "--out", str(tmp_path / "o"), "--preview", "m.png"])
    assert not (tmp_path / "o").exists()


def test_ctrl_c_then_resume(tmp_path, ckpt):
    cmd = [sys.executable, "-m", "satclip.cli", "embed", "--checkpoint", str(ckpt), "--grid", "10",
           "--chunk-points", "72", "--out", str(tmp_path / "o")]
    # Ctrl-C during chunk 3. SIGINT back to its default in the child: a pytest started in the
    # background (`cmd &` in a script) passes SIGINT on as ignored, and Python then installs no
    # KeyboardInterrupt handler
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                           env=fault_env(crash_at="shard:3:INT"),
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert first.returncode == 130, first.stderr
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("satclip embed: interrupted after ") and last.endswith(
        " of 9 chunks; rerun the same command to resume"), first.stderr
    assert "Traceback" not in first.stderr
    k = int(last.split("after ")[1].split()[0])
    second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert f"resuming: {k} of 9 chunks already written" in second.stderr
    assert "648 rows written of 648 expected" in second.stderr


def test_unknown_precision_fails_at_once():
    enc = satclip.LocationEncoder(4, 8, 1, 4)
    with pytest.raises(ValueError, match="precision must be one of"):
        enc.precision = "fp8"
    assert enc.precision == "float32"


def test_small_wordings(capsys):
    assert main(["info"]) == 0
    assert "loaded (loaded)" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    import re
    helptext = " ".join(capsys.readouterr().out.split())
    assert not re.search(r"\(default[^()]*(\([^()]*\))?[^()]*\) \(default", helptext)  # one default per option


def test_precision_modes_only_for_the_fused_encoder(tmp_path):
    from satclip.nn import ComposedLocationEncoder
    path = satclip.save(ComposedLocationEncoder("wrap", "mlp", capacity=8, embed_dim=4), tmp_path / "w.safetensors")
    with pytest.raises(SystemExit, match="--precision bf16 applies to spherical harmonics \\+ SIREN encoders"):
        main(["embed", "--checkpoint", str(path), "--grid", "30", "--precision", "bf16", "--out", str(tmp_path / "o")])
    assert main(["embed", "--checkpoint", str(path), "--grid", "30", "--out", str(tmp_path / "o"), "--quiet"]) == 0

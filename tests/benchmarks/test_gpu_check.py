"""benchmarks/gpu_check.sh and benchmarks/gpu_steps.py without a GPU: the dry path runs end to end
and writes results.jsonl and summary.md with every step; the budget arithmetic in the script's
header adds up to at most 6 minutes; and a CPU rehearsal runs the smoke cases' own code (CUDA
calls redirected to the CPU), so an API slip in them cannot waste the GPU window."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
spec = importlib.util.spec_from_file_location("gpu_steps", ROOT / "benchmarks" / "gpu_steps.py")
gpu_steps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_steps)

STEPS = ["env", "build", "smoke-sh", "smoke-first_layer", "smoke-hidden_bf16", "smoke-encoder", "smoke-big_index",
         "timings", "ncu", "sanitizer-memcheck", "sanitizer-racecheck", "pytest-cuda"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry path is the no-GPU path")
def test_dry_path_writes_results_and_summary(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    steps = [line.split("\t") for line in (tmp_path / "steps.tsv").read_text().splitlines()]
    assert [s[0] for s in steps] == STEPS
    status = {s[0]: s[1] for s in steps}
    assert status["env"] == "ok" and all(status[s] == "ok" for s in STEPS if s.startswith("smoke") or s == "timings")
    assert all(status[s].startswith("skipped") for s in ("build", "ncu", "sanitizer-memcheck", "pytest-cuda"))
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {r["step"] for r in results} == {s for s in STEPS if s.startswith("smoke")} | {"timings"}
    assert all(r["status"] == "skipped" for r in results) and len(results) > 200
    summary = (tmp_path / "summary.md").read_text()
    assert all(f"| {s} |" in summary for s in STEPS) and "## Targets" in summary


def test_budget_adds_up_to_six_minutes():
    head = SCRIPT.read_text()
    caps = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*step \"?([\w$-]+)\"? (\d+) ", head, re.M)}
    smoke = caps.pop("smoke-$fam") * 5
    sanitizer = caps.pop("sanitizer-$tool") * 2 + 2 * 4  # plus the 4 s probes
    total = sum(caps.values()) + smoke + sanitizer + 5  # + the summary
    assert total <= 360, caps
    assert re.search(r"BUDGET=\$\{BUDGET:-360\}", head)
    stated = re.search(r"= (\d+) s <= 360 s by construction", head)
    assert stated and int(stated.group(1)) == total, (stated and stated.group(1), total)


@pytest.fixture
def on_cpu(monkeypatch):
    """CUDA calls of the step code redirected to the CPU."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(gpu_steps, "poison", lambda: None)
    from satclip.ops import extension

    if extension.private_op("_cuda_fused") is None:
        pytest.skip("CUDA library not loaded (no _cuda_fused kernel)")


@pytest.mark.parametrize("family", ["sh", "first_layer", "hidden_bf16", "encoder"])
def test_cpu_rehearsal_of_the_smoke_cases(on_cpu, family):
    cases = gpu_steps.FAMILIES[family]()
    names = [c[0] for c in cases]
    assert len(set(names)) == len(names)  # every case has its own name in results.jsonl
    for name, fn, tol in cases[:4] + cases[len(cases) // 2: len(cases) // 2 + 2] + cases[-3:]:
        err = fn()
        assert err <= tol, (name, err)  # the CPU against itself: the case code is sound


def test_summary_reports_failures_and_targets(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_steps, "OUT", tmp_path)
    (tmp_path / "steps.tsv").write_text("smoke-sh\tfailed (rc 1)\t4\ntimings\tok\t30\n")
    gpu_steps.emit("smoke-sh", "forward L=10", "failed", max_rel_err=0.5, tol=1e-4)
    gpu_steps.emit("timings", "encoder L=40 float32 auto", "ok", points_per_s=3e7)
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write('{"step": "timings", "case": "cut sh')  # a line cut by a killed step
    gpu_steps.summary()
    text = (tmp_path / "summary.md").read_text()
    assert "| smoke-sh | failed (rc 1) | 4 | 0/1/0 | FAILED forward L=10: 0.5 |" in text
    assert "| L=40 encoder float32 >= 2e7 points/s | 3e+07 | yes |" in text
    assert "| L=40 encoder bf16 >= 2e8 points/s | not measured | - |" in text


def test_per_test_timeout_of_the_cuda_step(tmp_path):
    """SATCLIP_TEST_TIMEOUT (tests/conftest.py), which the GPU check sets for its pytest step:
    a hung test fails with TimeoutError and the next one still runs."""
    import shutil
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hangs():\n    time.sleep(30)\n\n"
                                           "def test_after():\n    assert True\n")
    env = {**os.environ, "SATCLIP_TEST_TIMEOUT": "1"}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "TimeoutError" in res.stdout and "1 failed, 1 passed" in res.stdout, res.stdout[-2000:]

"""Loading of the compiled library, the environment switch, the torch-version guard and the
backend report."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import satclip
from satclip.ops import extension, switches

PKG = Path(satclip.__file__).resolve().parent


def _run(code: str, env_extra: dict, pythonpath: str | None = None) -> str:
    env = {**os.environ, **env_extra}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # run outside the source tree: `python -c` puts the working directory first on sys.path
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=pythonpath or tempfile.gettempdir())
    return out.stdout.strip()


@pytest.mark.skipif(os.environ.get("SATCLIP_EXPECT_EXTENSION") != "1",
                    reason="only where the build is expected (make test / CI)")
def test_extension_is_loaded_when_expected():
    info = satclip.backend_info()
    assert info["extension"]["loaded"], info["extension"]["reason"]
    for op, row in info["ops"].items():
        expected = "blocked schedule" if op in extension.PYTHON_KERNELS else "compiled"
        assert row["cpu"].startswith(expected), (op, row)
    if shutil.which("nvcc") or Path("/usr/local/cuda/bin/nvcc").exists():
        if torch.version.cuda:  # a CUDA torch + nvcc: the CUDA kernels must have been built
            assert extension.build_has_cuda(), info["extension"]["build"]
    if extension.build_has_cuda():
        built = info["extension"]["build"]["torch_cuda_version"].split(".")[0]
        if torch.version.cuda and torch.version.cuda.split(".")[0] == built:  # same CUDA major: must load
            assert info["extension"]["cuda_loaded"], info["extension"]["cuda_reason"]
        else:  # a CPU torch (or another CUDA): the CPU kernels load, and the report says why CUDA's did not
            assert not info["extension"]["cuda_loaded"]
            assert "has no CUDA" in info["extension"]["cuda_reason"] or "CUDA kernels need" in info["extension"]["cuda_reason"]
            assert "CUDA library" in info["ops"]["spherical_harmonics"]["cuda"]


def test_disable_switch_forces_the_fallback():
    code = ("import json, satclip; i = satclip.backend_info(); "
            "print(json.dumps([i['extension']['loaded'], i['extension']['reason'], i['ops']['spherical_harmonics']['cpu']]))")
    loaded, reason, cpu = json.loads(_run(code, {"SATCLIP_DISABLE_EXTENSION": "1"}))
    assert not loaded and "SATCLIP_DISABLE_EXTENSION" in reason and cpu.startswith("reference")


def test_fallback_gives_the_same_numbers(tmp_path):
    code = ("import sys, torch, satclip; torch.manual_seed(0); "
            "x = torch.rand(64, 2, dtype=torch.float64) * 180 - 90; x[:, 0] *= 2; "
            "e = satclip.LocationEncoder(12, 32, 2, 8).double().eval(); "
            "torch.save((e(x).detach(), satclip.extension_loaded()), sys.argv[1])")
    outs = {}
    for flag in ("0", "1"):
        path = tmp_path / f"out{flag}.pt"
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=tmp_path,
                       env={**os.environ, "SATCLIP_DISABLE_EXTENSION": flag})
        outs[flag] = torch.load(path)
    assert outs["1"][1] is False
    if os.environ.get("SATCLIP_EXPECT_EXTENSION") == "1":
        assert outs["0"][1] is True  # really compiled vs fallback, not fallback twice
    assert torch.allclose(outs["0"][0], outs["1"][0], atol=1e-12)


def test_library_built_for_another_torch_is_refused(tmp_path):
    if not (PKG / "_C.so").exists():
        pytest.skip("no compiled library in this install")
    copy = tmp_path / "satclip"
    shutil.copytree(PKG, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    info = json.loads((copy / "_C_build.json").read_text())
    info["stable_abi_target"] = "99.0"
    (copy / "_C_build.json").write_text(json.dumps(info))
    code = "import satclip; i = satclip.backend_info(); print(i['extension']['loaded'], i['extension']['reason'])"
    out = _run(code, {"SATCLIP_DISABLE_EXTENSION": "0"}, pythonpath=str(tmp_path))
    assert out.startswith("False") and "built for torch >= 99.0 (stable ABI)" in out


def test_backend_info_names_every_op():
    info = satclip.backend_info()
    assert set(info["ops"]) == set(extension.OPS)
    for row in info["ops"].values():
        assert set(row) == {"cpu", "cuda"} and all(isinstance(v, str) and v for v in row.values())


@pytest.mark.skipif(not extension.extension_loaded(), reason="no compiled library")
def test_cpu_isa_switch_selects_the_baseline_kernels():
    code = ("import json, satclip; i = satclip.backend_info(); print(json.dumps(i['ops']['spherical_harmonics']['cpu']))")
    assert "baseline x86-64" in json.loads(_run(code, {"SATCLIP_CPU_ISA": "base"}))


@pytest.mark.skipif(not extension.extension_loaded(), reason="no compiled library")
def test_backend_info_says_which_bf16_gemms_run_on_the_cpu():
    with switches.override(SATCLIP_CPU_BF16_GEMM="rounded"):
        assert satclip.backend_info()["cpu_bf16"].startswith(
            "float32 GEMMs on bf16-rounded operands (SATCLIP_CPU_BF16_GEMM=rounded; AVX512-BF16 kernels: ")
    with switches.override(SATCLIP_CPU_BF16_GEMM="mkl"):
        forced = satclip.backend_info()["cpu_bf16"]
    if "MKL bf16 GEMM in torch: yes" in forced:
        assert forced.startswith("MKL bf16 GEMMs, float32 result (SATCLIP_CPU_BF16_GEMM=mkl;")
    else:
        assert "SATCLIP_CPU_BF16_GEMM=mkl but unavailable" in forced
    auto = satclip.backend_info()["cpu_bf16"].splitlines()[0]
    assert "(auto; AVX512-BF16 kernels: " in auto and "; MKL bf16 GEMM in torch: " in auto
    # auto times the paths the CPU runs where it has bf16 instructions (this package's AVX512-BF16
    # kernels, MKL's GEMM where torch has it), and keeps the float32 GEMMs on rounded operands elsewhere
    bf16_hw = ("AVX512-BF16 kernels: yes" in auto
               or ("(avx512_bf16 / amx_bf16): yes" in auto and "MKL bf16 GEMM in torch: yes" in auto))
    assert auto.startswith("the fastest of") == bf16_hw
    assert auto.startswith("float32 GEMMs on bf16-rounded operands") == (not bf16_hw)


@pytest.mark.parametrize("name", sorted(switches.SWITCHES))
def test_every_switch_follows_one_rule(name, monkeypatch):
    default = switches.SWITCHES[name].default
    for raw, want in (("", default), ("  ", default), (f" {default.upper()} ", default)):
        monkeypatch.setenv(name, raw)
        assert switches.value(name) == want
    monkeypatch.delenv(name)
    assert switches.value(name) == default
    monkeypatch.setenv(name, "maybe")
    with pytest.raises(ValueError, match=rf"environment variable {name}='maybe': must be one of "):
        switches.value(name)
    assert switches.describe()[name].startswith("invalid: ")


def test_an_invalid_switch_stops_the_import_with_its_name():
    env = {**os.environ, "SATCLIP_CPU_ISA": "avx9"}
    proc = subprocess.run([sys.executable, "-c", "import satclip.ops"], env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    assert proc.returncode != 0 and "SATCLIP_CPU_ISA='avx9': must be one of auto, base, avx2, avx512" in proc.stderr


def test_product_code_reads_no_other_environment_variable():
    """Every SATCLIP_* name in the package's Python is a switch of satclip.ops.switches (listed in
    the docs' table, docs/guides/precision.md), and the C++/CUDA code reads no environment variable at all (the switches
    reach it through its private ops): no test hook is read by shipped code."""
    import re
    names = set()
    for path in PKG.rglob("*.py"):
        names |= set(re.findall(r"SATCLIP_[A-Z0-9_]+", path.read_text()))
    assert names <= set(switches.SWITCHES), f"not switches: {sorted(names - set(switches.SWITCHES))}"
    root = Path(__file__).resolve().parents[2]  # the source checkout these tests belong to
    sources = [p for p in (root / "csrc").rglob("*") if p.suffix in (".h", ".cpp", ".cu", ".cuh")]
    assert sources, f"no C++ sources under {root / 'csrc'}"
    for path in sources:
        assert "getenv" not in path.read_text(), f"{path} reads the environment"
    text = (root / "docs" / "guides" / "precision.md").read_text()
    for name in switches.SWITCHES:
        assert f"`{name}`" in text, f"{name} is missing from the table of switches in docs/guides/precision.md"

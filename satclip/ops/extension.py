"""Loading of the compiled op library ``satclip/_C.so`` and the backend report.

The package works without it: every op has a pure-PyTorch fallback (:mod:`satclip.ops.reference`).
``SATCLIP_DISABLE_EXTENSION=1`` forces the fallback (switches: :mod:`.switches`). A library built against another torch
version is refused (torch's C++ ABI is not stable across versions), with the reason kept for
:func:`backend_info`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import switches
from .schemas import SCHEMAS  # the schemas the library registers kernels for, defined first

# _C.so and its build record are installed at the package root (satclip/), see CMakeLists.txt
_HERE = Path(__file__).resolve().parent.parent
OPS = tuple(SCHEMAS)

_state = {"loaded": False, "reason": "not attempted", "build": {}}
ISA_NAMES = {0: "baseline x86-64", 1: "avx2+fma", 2: "avx-512"}


def _load() -> None:
    switches.check_all()  # an invalid switch stops the first use, whether the kernels load or not
    if switches.value("SATCLIP_DISABLE_EXTENSION") == "1":
        _state["reason"] = "disabled by SATCLIP_DISABLE_EXTENSION"
        return
    lib = _HERE / "_C.so"
    info_file = _HERE / "_C_build.json"
    if not lib.exists():
        _state["reason"] = f"not built ({lib.name} not found in {_HERE}; install with `pip install --no-build-isolation .`)"
        return
    try:
        build = json.loads(info_file.read_text())
    except (OSError, ValueError) as exc:
        _state["reason"] = f"unreadable build record {info_file.name}: {exc}"
        return
    _state["build"] = build
    if build.get("torch_version") != torch.__version__:
        _state["reason"] = (f"built for torch {build.get('torch_version')}, running torch {torch.__version__}; "
                            "rebuild with `pip install --no-build-isolation .`")
        return
    try:
        torch.ops.load_library(str(lib))
    except (OSError, RuntimeError) as exc:
        _state["reason"] = f"failed to load: {exc}"
        return
    _state["loaded"] = True
    _state["reason"] = "loaded"
    switches.apply()


_load()


def extension_loaded() -> bool:
    """True when the compiled kernels are registered."""
    return bool(_state["loaded"])


def has_kernel(op: str, device_type: str) -> bool:
    """Whether the compiled library registered a kernel for ``satclip::<op>`` on ``device_type``
    ("cpu" or "cuda"); False means the pure-PyTorch fallback runs there."""
    key = {"cpu": "CPU", "cuda": "CUDA"}[device_type]
    return bool(torch._C._dispatch_has_kernel_for_dispatch_key(f"satclip::{op}", key))


def backend_info() -> dict:
    """Which implementation each op uses on CPU and CUDA, and why.

    Returns ``{"extension": {...}, "ops": {op: {"cpu": str, "cuda": str}}}``.
    """
    cuda_avail = torch.cuda.is_available()
    isa = None
    if _state["loaded"] and hasattr(torch.ops.satclip, "_cpu_isa"):
        isa = ISA_NAMES[int(torch.ops.satclip._cpu_isa(""))]
    ops = {}
    for op in OPS:
        row = {}
        for dev in ("cpu", "cuda"):
            if has_kernel(op, dev):
                what = f"compiled ({isa})" if dev == "cpu" and isa else "compiled"
                if dev == "cuda" and not cuda_avail:
                    what += ", but no CUDA device here"
            elif not _state["loaded"]:
                what = f"reference (pure PyTorch): extension {_state['reason']}"
            elif dev == "cuda" and build_has_cuda() is False:
                what = "reference (pure PyTorch): extension built without CUDA"
            else:
                what = "reference (pure PyTorch): no compiled kernel for this op"
            row[dev] = what
        ops[op] = row
    return {
        "extension": {"loaded": _state["loaded"], "reason": _state["reason"], "build": _state["build"],
                      "path": str(_HERE / "_C.so")},
        "torch": torch.__version__,
        "cuda_available": cuda_avail,
        "ops": ops,
        "cuda_fused": cuda_fused_mode(),
        "cpu_bf16": cpu_bf16_path(),
        "cpu_tf32": "float32 (CPUs have no TF32 units: rounding the operands would only cost time, and float32 "
                    "is within the tf32 mode's stated error)",
        "switches": switches.describe(),
    }


def cpu_bf16_path() -> str:
    """Which GEMMs ``precision="bf16"`` runs on the CPU, and why: MKL's bf16 GEMM with a float32
    result (``cblas_gemm_bf16bf16f32`` from torch's MKL; csrc/cpu_bf16_gemm.h), float32 GEMMs on
    bf16-rounded operands (the same numbers up to summation order), or, by default where the CPU
    has AVX512-BF16 or AMX, the faster of the two, timed once per shape (each choice made so far
    on its own line). ``SATCLIP_CPU_BF16_GEMM=auto|mkl|rounded``."""
    if not hasattr(torch.ops.satclip, "_cpu_bf16_gemm"):
        return "float32 GEMMs on bf16-rounded operands (pure-PyTorch fallback)"
    which, why = torch.ops.satclip._cpu_bf16_gemm("").split("|", 1)
    what = {"mkl": "MKL bf16 GEMMs, float32 result",
            "rounded": "float32 GEMMs on bf16-rounded operands",
            "measured": "the faster of MKL's bf16 GEMMs and float32 GEMMs on bf16-rounded operands, timed per shape"}[which]
    first, *choices = why.split("\n")
    return f"{what} ({first})" + "".join(f"\n  {c}" for c in choices)


def cuda_fused_mode() -> str | None:
    """How the CUDA encoder picks between its fused kernels and cuBLAS (SATCLIP_CUDA_FUSED:
    auto, fused or cublas), or None without CUDA kernels."""
    if not hasattr(torch.ops.satclip, "_cuda_fused"):
        return None
    return torch.ops.satclip._cuda_fused("").splitlines()[0]


def build_has_cuda():
    b = _state["build"].get("with_cuda")
    return None if b is None else b.upper() in ("ON", "TRUE", "1")

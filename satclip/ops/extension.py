"""Loading of the compiled op libraries and the backend report.

``satclip/_C.so`` holds the CPU kernels, ``satclip/_C_cuda.so`` the CUDA kernels (built where nvcc
and a CUDA torch were present). Both are built against LibTorch's stable ABI, so they load in
every torch from the build's target (``stable_abi_target`` in ``_C_build.json``, 2.11) on; the
CUDA one also needs the CUDA major version it was built with. What does not load is reported
with the reason (:func:`backend_info`), and the ops fall back to pure PyTorch
(:mod:`satclip.ops.reference`). ``SATCLIP_DISABLE_EXTENSION=1`` forces the fallback (switches:
:mod:`.switches`).

The streaming CLIP loss's kernel (:mod:`.clip_loss_blocked`, ATen calls) is registered here for
CPU and CUDA alongside the compiled libraries.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import switches
from .schemas import PRIVATE_SCHEMAS, SCHEMAS  # the schemas the libraries register kernels for, defined first

# the libraries and their build record are installed at the package root (satclip/), see CMakeLists.txt
_HERE = Path(__file__).resolve().parent.parent
OPS = tuple(SCHEMAS)
PYTHON_KERNELS = ("clip_loss_streaming", "clip_loss_streaming_backward")  # registered from .clip_loss_blocked

_state = {"loaded": False, "reason": "not attempted", "build": {}, "cuda_loaded": False, "cuda_reason": "not attempted"}
ISA_NAMES = {0: "baseline x86-64", 1: "avx2+fma", 2: "avx-512"}
_lib = None  # the torch.library.Library of the Python-registered kernels (must stay alive)


def _version_tuple(v: str) -> tuple[int, int]:
    major, minor = v.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def _load_cuda(build: dict) -> None:
    lib = _HERE / "_C_cuda.so"
    if not lib.exists():
        _state["cuda_reason"] = ("not built (no nvcc or a CPU torch at build time)" if build.get("with_cuda") != "ON"
                                 else f"{lib.name} missing from {_HERE}")
        return
    built = build.get("torch_cuda_version") or ""
    running = torch.version.cuda or ""
    if not running:
        _state["cuda_reason"] = f"this torch ({torch.__version__}) has no CUDA; the CUDA kernels need CUDA {built}"
        return
    if built.split(".")[0] != running.split(".")[0]:
        _state["cuda_reason"] = (f"built for CUDA {built}, this torch runs CUDA {running} (the CUDA kernels need the "
                                 "same major version)")
        return
    try:
        torch.ops.load_library(str(lib))
    except (OSError, RuntimeError) as exc:
        _state["cuda_reason"] = f"failed to load: {exc}"
        return
    _state["cuda_loaded"], _state["cuda_reason"] = True, "loaded"


def _register_python_kernels() -> None:
    global _lib
    from . import clip_loss_blocked

    _lib = torch.library.Library("satclip", "IMPL")
    for key in ("CPU", "CUDA"):
        for name in PYTHON_KERNELS:
            _lib.impl(name, getattr(clip_loss_blocked, name), key)


def _load() -> None:
    switches.check_all()  # an invalid switch stops the first use, whether the kernels load or not
    if switches.value("SATCLIP_DISABLE_EXTENSION") == "1":
        _state["reason"] = _state["cuda_reason"] = "disabled by SATCLIP_DISABLE_EXTENSION"
        return
    lib = _HERE / "_C.so"
    info_file = _HERE / "_C_build.json"
    if not lib.exists():
        _state["reason"] = _state["cuda_reason"] = (
            f"not built ({lib.name} not found in {_HERE}; install the wheel, or build with `pip install --no-build-isolation .`)")
        return
    try:
        build = json.loads(info_file.read_text())
    except (OSError, ValueError) as exc:
        _state["reason"] = _state["cuda_reason"] = f"unreadable build record {info_file.name}: {exc}"
        return
    _state["build"] = build
    target = build.get("stable_abi_target", "")
    try:
        too_old = _version_tuple(torch.__version__) < _version_tuple(target)
    except ValueError:
        _state["reason"] = _state["cuda_reason"] = f"build record names no stable-ABI target ({target!r}): rebuild"
        return
    if too_old:
        _state["reason"] = _state["cuda_reason"] = (
            f"built for torch >= {target} (stable ABI), running torch {torch.__version__}; upgrade torch")
        return
    try:
        torch.ops.load_library(str(lib))
    except (OSError, RuntimeError) as exc:
        _state["reason"] = _state["cuda_reason"] = f"failed to load: {exc}"
        return
    _state["loaded"] = True
    _state["reason"] = "loaded"
    _register_python_kernels()
    _load_cuda(build)
    switches.apply()


_load()


def private_op(name: str):
    """The private op ``satclip::<name>`` (:data:`.schemas.PRIVATE_SCHEMAS`) when a loaded library
    gave it a kernel, else None."""
    if not torch._C._dispatch_has_kernel_for_dispatch_key(f"satclip::{name}", "CompositeExplicitAutograd"):
        return None
    return getattr(torch.ops.satclip, name)


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
    if private_op("_cpu_isa") is not None:
        isa = ISA_NAMES[int(private_op("_cpu_isa")(""))]
    ops = {}
    for op in OPS:
        row = {}
        for dev in ("cpu", "cuda"):
            if has_kernel(op, dev) and op in PYTHON_KERNELS:
                what = "blocked schedule (ATen calls, satclip/ops/clip_loss_blocked.py)"
            elif has_kernel(op, dev):
                what = f"compiled ({isa})" if dev == "cpu" and isa else "compiled"
                if dev == "cuda" and not cuda_avail:
                    what += ", but no CUDA device here"
            elif not _state["loaded"]:
                what = f"reference (pure PyTorch): extension {_state['reason']}"
            elif dev == "cuda" and not _state["cuda_loaded"]:
                what = f"reference (pure PyTorch): CUDA library {_state['cuda_reason']}"
            else:
                what = "reference (pure PyTorch): no compiled kernel for this op"
            row[dev] = what
        ops[op] = row
    return {
        "extension": {"loaded": _state["loaded"], "reason": _state["reason"], "build": _state["build"],
                      "path": str(_HERE / "_C.so"), "cuda_loaded": _state["cuda_loaded"],
                      "cuda_reason": _state["cuda_reason"]},
        "torch": torch.__version__,
        "cuda_available": cuda_avail,
        "ops": ops,
        "cuda_fused": cuda_fused_mode(),
        "cuda_fused_choices": cuda_fused_choices(),
        "cpu_bf16": cpu_bf16_path(),
        "cpu_bf16_choices": cpu_bf16_choices(),
        "cpu_tf32": "float32 (CPUs have no TF32 units: rounding the operands would only cost time, and float32 "
                    "is within the tf32 mode's stated error)",
        "switches": switches.describe(),
    }


def _timed_choices(name: str) -> dict | None:
    """The report of a compiled timed-choice cache (csrc/common/timed_choice.h) as a dict:
    ``mode``, ``path`` (what runs untimed, or ``"measured"``), ``why`` and ``decisions``, one
    ``{"key", "chosen", "unit", "ms": {candidate: milliseconds}}`` per shape timed so far; None
    without the compiled library."""
    op = private_op(name)
    return None if op is None else json.loads(op(""))


def cpu_bf16_choices() -> dict | None:
    """Which GEMMs ``precision="bf16"`` runs on the CPU (``SATCLIP_CPU_BF16_GEMM``), as a dict
    (see :func:`_timed_choices`); ``path`` is ``"avx512bf16"``, ``"mkl"``, ``"rounded"`` or
    ``"measured"`` (the fastest path this CPU runs, timed per shape)."""
    return _timed_choices("_cpu_bf16_gemm")


def cuda_fused_choices() -> dict | None:
    """How the CUDA encoder picks between its fused kernels and cuBLAS (``SATCLIP_CUDA_FUSED``),
    as a dict (see :func:`_timed_choices`), or None without the CUDA library."""
    return _timed_choices("_cuda_fused")


def cpu_bf16_path() -> str:
    """Which GEMMs ``precision="bf16"`` runs on the CPU, and why, in words: this package's AVX512-BF16
    kernels (VDPBF16PS, float32 sums; csrc/cpu/encoder_bf16_avx512.h), MKL's bf16 GEMM with a float32
    result (``cblas_gemm_bf16bf16f32`` from torch's MKL; csrc/glue/cpu_bf16_gemm.h), float32 GEMMs on
    bf16-rounded operands (the same numbers up to summation order), or, by default where the CPU
    has AVX512-BF16 or AMX, the fastest of those it runs, timed once per shape (each choice made so
    far on its own line). ``SATCLIP_CPU_BF16_GEMM=auto|avx512bf16|mkl|rounded``."""
    report = cpu_bf16_choices()
    if report is None:
        return "float32 GEMMs on bf16-rounded operands (pure-PyTorch fallback)"
    what = {"avx512bf16": "AVX512-BF16 kernels (VDPBF16PS), float32 sums and result",
            "mkl": "MKL bf16 GEMMs, float32 result",
            "rounded": "float32 GEMMs on bf16-rounded operands",
            "measured": "the fastest of the bf16 paths this CPU runs, timed per shape"}[report["path"]]
    lines = [f"{d['chosen']}: {d['key']}: " + ", ".join(f"{k} {v:.3g} ms" for k, v in d["ms"].items())
             + f" per {d['unit']}" for d in report["decisions"]]
    return f"{what} ({report['why']})" + "".join(f"\n  {line}" for line in lines)


def cuda_fused_mode() -> str | None:
    """How the CUDA encoder picks between its fused kernels and cuBLAS (SATCLIP_CUDA_FUSED:
    auto, fused or cublas), or None without CUDA kernels."""
    report = cuda_fused_choices()
    return None if report is None else report["mode"]


def build_has_cuda():
    b = _state["build"].get("with_cuda")
    return None if b is None else b.upper() in ("ON", "TRUE", "1")


"""The environment variables that change how satclip runs: read here and nowhere else, with one
rule, and handed to the compiled library through its private ops.

The rule: unset or empty means the default; otherwise the value (spaces around it ignored, case
ignored) must be one of the switch's choices, or :func:`value` raises a ``ValueError`` naming
the variable, the value and the choices. The kernels' modes are applied when the compiled
library loads (:func:`apply`); ``satclip info`` shows each switch and its value.

Test hooks are not switches: the crash tests inject their faults from outside the package
(``tests/embedding/fault_hooks``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Switch:
    name: str
    choices: tuple[str, ...]   # the first is the default
    why: str                   # what a user needs it for (the docs' table of switches, docs/guides/precision.md, says the same)

    @property
    def default(self) -> str:
        return self.choices[0]


SWITCHES = {s.name: s for s in (
    Switch("SATCLIP_DISABLE_EXTENSION", ("0", "1"),
           "1: run every op on its pure-PyTorch twin (a suspected kernel bug, or a comparison)"),
    Switch("SATCLIP_CPU_ISA", ("auto", "base", "avx2", "avx512"),
           "the CPU kernels' instruction set: auto (the best the CPU has), or a lower one (a suspected "
           "instruction-set issue, or a comparison); one the CPU lacks is refused"),
    Switch("SATCLIP_CPU_BF16_GEMM", ("auto", "avx512bf16", "mkl", "rounded"),
           "precision='bf16' on the CPU: this package's AVX512-BF16 kernels (avx512bf16), MKL's bf16 "
           "GEMM (mkl) or float32 GEMMs on bf16-rounded operands (rounded); auto times those the CPU "
           "runs once per shape where it has bf16 instructions and keeps the fastest, and runs "
           "rounded elsewhere"),
    Switch("SATCLIP_CUDA_FUSED", ("auto", "fused", "cublas"),
           "CUDA encoder: this package's fused kernels, cuBLAS, or (auto) whichever times faster "
           "per shape"),
)}


def value(name: str) -> str:
    """The switch's value under the rule above."""
    switch = SWITCHES[name]
    raw = os.environ.get(name, "")
    v = raw.strip().lower()
    if not v:
        return switch.default
    if v not in switch.choices:
        raise ValueError(f"environment variable {name}={raw!r}: must be one of {', '.join(switch.choices)} "
                         f"(or unset: {switch.default})")
    return v


def check_all() -> None:
    """Raises for the first switch whose value breaks the rule."""
    for name in SWITCHES:
        value(name)


def describe() -> dict:
    """``{name: value}`` for ``satclip info`` (an invalid setting shows its error)."""
    out = {}
    for name in SWITCHES:
        try:
            out[name] = value(name)
        except ValueError as exc:
            out[name] = f"invalid: {exc}"
    return out


def apply() -> None:
    """Hands the kernels' switches to the loaded compiled library (a no-op without it)."""
    import torch

    for name, switch in (("_cpu_isa", "SATCLIP_CPU_ISA"), ("_cpu_bf16_gemm", "SATCLIP_CPU_BF16_GEMM"),
                         ("_cuda_fused", "SATCLIP_CUDA_FUSED")):
        if torch._C._dispatch_has_kernel_for_dispatch_key(f"satclip::{name}", "CompositeExplicitAutograd"):
            getattr(torch.ops.satclip, name)(value(switch))


@contextmanager
def override(**values):
    """Sets switches for a block (``override(SATCLIP_CPU_BF16_GEMM="mkl")``) and applies them;
    the previous values come back after it (tests and benchmarks that compare two paths)."""
    before = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if k not in SWITCHES:
                raise KeyError(f"unknown switch {k}; switches: {sorted(SWITCHES)}")
            os.environ[k] = v
        apply()
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        apply()

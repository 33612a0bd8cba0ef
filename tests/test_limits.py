"""The limits and names Python and the compiled kernels share come from one file
(satclip/_limits.json): Python reads it, CMake generates the kernels' header from it. A bound
or a precision mode changed there is what both sides enforce."""

import json
from pathlib import Path

import pytest
import torch

import satclip
from satclip import _limits
from satclip.ops import extension, ops
from satclip.ops import reference as ref

ROOT = Path(__file__).resolve().parents[1]


def test_python_reads_the_one_file():
    data = json.loads((Path(_limits.__file__).with_name("_limits.json")).read_text())
    assert _limits.PRECISIONS == tuple(data["precisions"]) and _limits.MAX_DEGREE == data["max_degree"]
    assert satclip.options.PRECISIONS == _limits.PRECISIONS


def test_the_header_is_generated_from_it():
    # CMakeLists.txt reads the file and fills csrc/common/limits.h.in; nothing in csrc types the values.
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "satclip/_limits.json" in cmake and "limits.h.in" in cmake
    template = (ROOT / "csrc/common/limits.h.in").read_text()
    assert "@SATCLIP_MAX_DEGREE@" in template and "@SATCLIP_PRECISION_NAMES@" in template
    checks = (ROOT / "csrc/glue/op_checks.h").read_text()
    assert "SATCLIP_MAX_DEGREE" in checks and str(_limits.MAX_DEGREE) not in checks
    precision = (ROOT / "csrc/glue/precision.h").read_text()
    assert "SATCLIP_PRECISION_NAMES" in precision
    assert not any(f'"{name}"' in precision for name in _limits.PRECISIONS), "precision.h types a mode's name"


@pytest.mark.parametrize("impl", ["dispatched", "reference"])
def test_both_sides_hold_the_degree_bound(impl):
    fn = ops.spherical_harmonics if impl == "dispatched" else ref.spherical_harmonics
    x = torch.zeros(1, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=rf"legendre_polys must be in \[1, {_limits.MAX_DEGREE}\]"):
        fn(x, _limits.MAX_DEGREE + 1)
    assert fn(x, 2).shape == (1, 4)


def test_the_compiled_op_lists_the_files_precisions():
    if not extension.has_kernel("location_encoder_forward", "cpu"):
        pytest.skip("compiled library not loaded")
    x = torch.zeros(1, 2)
    w, b = [torch.zeros(3, 4)], [torch.zeros(3)]
    names = ", ".join(f"'{p}'" for p in _limits.PRECISIONS)
    with pytest.raises(RuntimeError, match=f"precision must be one of {names}, got 'fp8'"):
        ops.location_encoder_forward(x, 2, w, b, 30.0, 1.0, 16, "fp8")

"""Shared helpers: test points (random + poles, dateline, origin), devices, float64 references."""

from __future__ import annotations

import contextlib
import os
import signal

import numpy as np
import pytest
import torch

import satclip  # noqa: F401  (registers the ops, loads _C if present)
from satclip.ops import extension

# The exact places where SH code goes wrong: poles, the dateline from both sides, (0, 0),
# points a hair away from the poles, and a longitude outside [-180, 180].
SPECIAL_POINTS = [
    [0.0, 90.0], [0.0, -90.0], [123.4, 90.0], [-45.0, -90.0], [180.0, 0.0], [-180.0, 0.0],
    [179.9999, 45.0], [-179.9999, -45.0], [0.0, 0.0], [10.0, 89.9999], [-10.0, -89.9999],
    [540.0, 12.0], [-725.5, -33.0],
]


def lonlat_points(n: int = 200, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """``[n + 13, 2]`` (lon, lat) degrees: uniform on the sphere plus SPECIAL_POINTS."""
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    lat = torch.rad2deg(torch.asin(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1))
    pts = torch.cat([torch.stack([lon, lat], 1), torch.tensor(SPECIAL_POINTS, dtype=torch.float64)])
    return pts.to(dtype)


def scipy_real_sh(lonlat: torch.Tensor, L: int) -> torch.Tensor:
    """Independent float64 reference: scipy's complex SH (with Condon-Shortley phase) turned
    into orthonormal real SH without it, feature ``l*l + l + m``."""
    from scipy.special import sph_harm_y

    x = lonlat.detach().double().numpy()
    lon, colat = np.deg2rad(x[:, 0]), np.deg2rad(90.0 - x[:, 1])
    out = np.zeros((len(x), L * L))
    for l in range(L):
        m = np.arange(0, l + 1)
        Y = sph_harm_y(l, m[None, :], colat[:, None], lon[:, None])
        out[:, l * l + l] = Y[:, 0].real
        sgn = (-1.0) ** m[1:]
        out[:, l * l + l + m[1:]] = np.sqrt(2) * sgn * Y[:, 1:].real
        out[:, l * l + l - m[1:]] = np.sqrt(2) * sgn * Y[:, 1:].imag
    return torch.from_numpy(out)


def original_hparams(**over) -> dict:
    """``hyper_parameters`` as the original SatCLIP writes them (with the three extra keys of the
    released checkpoints), for hand-made original-layout checkpoints."""
    hp = {"embed_dim": 256, "image_resolution": 256, "vision_layers": "moco_resnet18", "vision_width": 64,
          "vision_patch_size": 32, "in_channels": 13, "le_type": "sphericalharmonics", "pe_type": "siren",
          "frequency_num": 16, "max_radius": 260, "min_radius": 1, "legendre_polys": 10,
          "harmonics_calculation": "analytic", "sh_embedding_dims": 32, "learning_rate": 1e-4,
          "weight_decay": 0.01, "num_hidden_layers": 2, "capacity": 256,
          "eval_downstream": False, "air_temp_data_path": None, "election_data_path": None}
    hp.update(over)
    return hp


def compiled_cpu(op: str = "spherical_harmonics") -> bool:
    return extension.has_kernel(op, "cpu")


EXPECT_EXTENSION = os.environ.get("SATCLIP_EXPECT_EXTENSION") == "1"


def require_compiled(op: str, device: str = "cpu") -> None:
    """For a test that holds a compiled kernel against its pure-PyTorch twin: without the kernel
    it would compare the twin with itself. Skips where no kernel is expected; fails loudly where
    it is (``SATCLIP_EXPECT_EXTENSION=1``: make test and CI, CPU kernels)."""
    if extension.has_kernel(op, device):
        return
    if device == "cpu" and EXPECT_EXTENSION:
        pytest.fail(f"satclip::{op} has no compiled CPU kernel, but SATCLIP_EXPECT_EXTENSION=1 "
                    f"({extension.backend_info()['extension']['reason']})")
    pytest.skip(f"no compiled {device} kernel for satclip::{op}")


# Marks a test (or module) that needs the compiled CPU kernels: skipped without them, failed
# without them under SATCLIP_EXPECT_EXTENSION=1 (see pytest_runtest_setup).
needs_compiled_cpu = pytest.mark.compiled_cpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global random state (torch, numpy), whatever ran before."""
    torch.manual_seed(0)
    np.random.seed(0)


def pytest_configure(config):
    config.addinivalue_line("markers", "compiled_cpu: needs the compiled CPU kernels (fails without them under "
                                       "SATCLIP_EXPECT_EXTENSION=1, skipped otherwise)")


def pytest_runtest_setup(item):
    if item.get_closest_marker("compiled_cpu") is not None:
        require_compiled("spherical_harmonics", "cpu")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def build_sim(name: str, out_dir) -> "ctypes.CDLL":
    """Compiles ``tests/ops/sim/<name>.cpp`` (a CPU run of a CUDA kernel's phases, see there) into
    ``out_dir`` and loads it; skips the test when no C++ compiler is found."""
    import ctypes
    import shutil
    import subprocess
    from pathlib import Path

    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the kernel simulation")
    root = Path(__file__).resolve().parents[1]
    lib = Path(out_dir) / f"{name}.so"
    subprocess.run([cxx, "-std=c++20", "-O2", "-shared", "-fPIC", f"-I{root / 'csrc'}",
                    str(root / "tests" / "ops" / "sim" / f"{name}.cpp"), "-o", str(lib)], check=True)
    return ctypes.CDLL(str(lib))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """SATCLIP_TEST_TIMEOUT=S: a test running longer than S seconds fails with TimeoutError (the
    GPU check sets it: a hung kernel costs one test, not the window). SIGALRM, main thread only;
    pytest-timeout is not needed (the GPU machine may not have it)."""
    limit = int(os.environ.get("SATCLIP_TEST_TIMEOUT", "0") or 0)
    if limit <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"{item.nodeid} ran longer than SATCLIP_TEST_TIMEOUT={limit} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


FAULT_HOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedding", "fault_hooks")


def fault_env(crash_at: str | None = None, hooks_dir=None, base: dict | None = None) -> dict:
    """The environment of a child process with the fault hooks of ``tests/embedding/fault_hooks``
    (a crash at ``crash_at``, e.g. ``"shard:2"``; Ray actor deaths triggered in ``hooks_dir``)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([FAULT_HOOKS] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if crash_at:
        env["FAULT_HOOKS_CRASH_AT"] = crash_at
    if hooks_dir is not None:
        env["FAULT_HOOKS_DIR"] = str(hooks_dir)
    return env


def torchgeo_satclip():
    """torchgeo 0.10's ``torchgeo/models/satclip.py`` imported by path (``benchmarks/torchgeo_peer.py``:
    its wheel from PyPI, cached); skips the test, with the reason, where it cannot be had."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "torchgeo_peer.py"
    spec = importlib.util.spec_from_file_location("satclip_benchmarks_torchgeo_peer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        return mod.load()
    except mod.Unavailable as exc:
        pytest.skip(str(exc))


def original_sh():
    """``original_analytic_sh`` of ``benchmarks/original.py``: the original SatCLIP's "analytic"
    SH re-created (sympy-expanded polynomials evaluated in float64), kept outside the package."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "original.py"
    spec = importlib.util.spec_from_file_location("satclip_benchmarks_original", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.original_analytic_sh


# Tolerances of float32 results (the policy every float32 test follows; tests/README.md): a
# float32 result is compared with a float64 reference, and the tolerance comes from the
# magnitudes involved, never from one machine's summation order: ``k * rel * M`` where ``M`` is
# the sum of the magnitudes of the terms the result sums (computed in float64 from the inputs),
# ``rel`` the relative error each term carries (``EPS32`` for a product of exact inputs; larger
# where an input is itself rounded, e.g. a logit of size s has ``(1 + s) * EPS32``) and ``k`` a
# small constant for the rounding of the sum itself (8: pairwise or blocked summation of up to
# millions of terms stays well inside it, whatever the BLAS and instruction set).
EPS32 = float(torch.finfo(torch.float32).eps)


def float32_tolerance(magnitude, rel: float = EPS32, k: float = 8.0):
    """Absolute tolerance of a float32 result whose terms have summed magnitude ``magnitude``
    (a number or a float64 tensor, elementwise)."""
    return k * rel * (magnitude if isinstance(magnitude, torch.Tensor) else torch.tensor(float(magnitude)))


@contextlib.contextmanager
def tmpfs(mnt, options: str):
    """A tmpfs mounted at ``mnt`` with ``options`` (``"size=1m"``, ``"ro,size=1m"``) for the
    block; needs root (the test is skipped otherwise)."""
    import subprocess

    mnt.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip(f"cannot mount a tmpfs ({options}) here (not root?)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])

"""Shared benchmark setup: sizes (full or smoke), inputs, and a helper that records the
number of points per call so that report.py can turn timings into points per second."""

from __future__ import annotations

import os

import pytest
import torch

import satclip  # noqa: F401

SMOKE = os.environ.get("SATCLIP_BENCH_SMOKE", "") not in ("", "0")
HAS_CUDA = torch.cuda.is_available()


def size(full: int, smoke: int = 64) -> int:
    return smoke if SMOKE else full


def points(n: int, dtype=torch.float32, device="cpu", seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    lat = torch.rad2deg(torch.asin(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1))
    return torch.stack([lon, lat], 1).to(dtype=dtype, device=device)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run(benchmark, fn, *, n_points: int, device: str = "cpu", rounds: int = 5, setup=None, **info):
    """Times ``fn`` (warm-up first, CUDA synchronised) and records what report.py needs;
    ``setup`` runs before each call, untimed."""
    def call():
        out = fn()
        sync(device)
        return out

    benchmark.extra_info.update({"points": n_points, "device": device, "smoke": SMOKE, **info})
    if HAS_CUDA and device == "cuda":
        benchmark.extra_info["gpu"] = torch.cuda.get_device_name()
    return benchmark.pedantic(call, setup=setup, rounds=1 if SMOKE else rounds, warmup_rounds=0 if SMOKE else 1,
                              iterations=1)


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)

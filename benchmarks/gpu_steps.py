"""The steps of benchmarks/gpu_check.sh that run Python, one subcommand each, each in its own
process (a sticky CUDA error or a crash loses that step only):

  smoke FAMILY   the CUDA kernels of one family against the CPU op (sh, first_layer,
                 hidden_bf16, encoder, big_index): outputs poisoned with NaN first, strided
                 inputs, N = 0, partial tiles; one JSON line per case
  timings        CUDA-event timings of the encoder (L = 10, 40; every precision mode; fused and
                 cuBLAS forced, and the automatic choice), SH forward/backward, a location-side
                 training step, each beside the eager pure-PyTorch path in the same process
  kernels        every project kernel once on small inputs (for compute-sanitizer and ncu)
  summary        $OUT/summary.md from $OUT/steps.tsv and $OUT/results.jsonl

Every result is appended to $OUT/results.jsonl the moment it is known (one JSON object per
line: step, case, status ok | failed | skipped, figures). Without a CUDA device (or with --dry)
the cases are enumerated and written as skipped, so the dry path in CI checks this file too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from satclip.options import PRECISIONS

OUT = Path(os.environ.get("OUT", "."))
# Peak HBM bandwidth (bytes/s) of the GPUs this script is meant for, for the SH output share.
HBM = {"H100": 3.35e12, "H200": 4.8e12}


def emit(step: str, case: str, status: str, **figures) -> None:
    line = json.dumps({"step": step, "case": case, "status": status, **figures}, default=str)
    with open(OUT / "results.jsonl", "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    print(line, flush=True)


def cuda_ready() -> tuple[bool, str]:
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    from satclip.ops.extension import has_kernel
    if not has_kernel("spherical_harmonics", "cuda"):
        return False, "satclip has no CUDA kernels (built without CUDA)"
    return True, ""


def points(n: int, dtype=torch.float32, seed: int = 0, layout: str = "contiguous") -> torch.Tensor:
    """(lon, lat) on the sphere plus poles and the dateline; ``layout`` "strided" (rows of a
    [n, 3] buffer) or "transposed" (columns of a [2, n] tensor) for non-contiguous inputs."""
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    lat = torch.rad2deg(torch.asin(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1))
    x = torch.stack([lon, lat], 1)
    special = torch.tensor([[180.0, 90.0], [-180.0, -90.0], [0.0, 90.0], [179.999, 0.0]], dtype=torch.float64)
    x[: min(n, 4)] = special[: min(n, 4)]
    x = x.to(dtype)
    if layout == "strided":
        buf = torch.zeros(n, 3, dtype=dtype)
        buf[:, :2] = x
        return buf[:, :2]
    if layout == "transposed":
        return x.t().contiguous().t()
    return x


def poison() -> None:
    """Fills the caching allocator's free memory with NaN, so output an op leaves unwritten shows."""
    if torch.cuda.is_available():
        free = torch.cuda.mem_get_info()[0]
        block = torch.full((min(free // 8, 1 << 28),), float("nan"), device="cuda")
        del block


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.double().cpu(), want.double()
    if got.numel() == 0:
        return 0.0
    if not torch.isfinite(got).all():
        return float("inf")  # NaN: an element the kernel did not write (poisoned) or a real NaN
    return ((got - want).abs().max() / (want.abs().max() + 1e-30)).item()


# -- smoke families: name -> list of (case name, function returning (error, tolerance)) -----------

def _sh_cases():
    from satclip.ops import ops
    cases = []
    # one degree per order bucket of the SH kernels, float32 and float64, and their backward
    for L in (1, 10, 17, 33, 40, 65, 130, 300):
        for dt, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4 if L <= 65 else 2e-2)):
            for n, layout in ((0, "contiguous"), (129, "strided"), (1000, "transposed")):
                def fwd(L=L, dt=dt, n=n, layout=layout):
                    x = points(n, dt, layout=layout)
                    poison()
                    return rel_err(ops.spherical_harmonics(x.cuda(), L), ops.spherical_harmonics(x, L))

                def bwd(L=L, dt=dt, n=n, layout=layout):
                    x = points(n, dt, layout=layout)
                    gy = torch.randn(n, L * L, dtype=dt, generator=torch.Generator().manual_seed(L))
                    poison()
                    return rel_err(ops.spherical_harmonics_backward(gy.cuda(), x.cuda(), L),
                                   ops.spherical_harmonics_backward(gy, x, L))
                name = f"L={L} {str(dt)[6:]} n={n} {layout}"
                cases += [(f"forward {name}", fwd, tol), (f"backward {name}", bwd, tol * 10)]
    return cases


def _layer(L, H, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = (torch.rand(H, L * L, generator=g, dtype=torch.float64) * 2 - 1) / (L * L)
    b = (torch.rand(H, generator=g, dtype=torch.float64) * 2 - 1) / (L * L)
    return w.to(dtype), b.to(dtype)


def _first_layer_cases():
    from satclip.ops import ops
    cases = []
    # every order bucket (L <= 16, 32, 40, 64) at both ends, and 65 (SH + cuBLAS); H = 200: a
    # partial output tile; n = 129: a partial point tile
    for L in (1, 16, 17, 32, 33, 40, 41, 64, 65):
        for dt, precision, tol in ((torch.float32, "float32", 1e-4), (torch.float64, "float32", 1e-10),
                                   (torch.float32, "bf16", 3e-2)):
            for n, layout in ((0, "contiguous"), (129, "strided"), (1000, "contiguous")):
                def run(L=L, dt=dt, precision=precision, n=n, layout=layout):
                    x = points(n, dt, layout=layout)
                    w, b = _layer(L, 200, dt)
                    poison()
                    got = ops.sh_siren_layer(x.cuda(), L, w.cuda(), b.cuda(), 30.0, precision)
                    return rel_err(got.float(), ops.sh_siren_layer(x, L, w, b, 30.0, precision).float())
                cases.append((f"L={L} {str(dt)[6:]} {precision} n={n} {layout}", run, tol))
    return cases


def _encoder(L, hidden, layers=2, out=64, dtype=torch.float32, seed=0):
    from satclip.nn import LocationEncoder
    torch.manual_seed(seed)
    return LocationEncoder(L, hidden, layers, out).to(dtype).eval()


def _encoder_case(L, hidden, dt, precision, mode, n, layout, L_out=64):
    from satclip.ops import ops

    def run():
        enc = _encoder(L, hidden, out=L_out, dtype=dt)
        enc.precision = precision
        x = points(n, dt, layout=layout)
        with torch.no_grad():
            want = enc(x)
            ops._cuda_fused(mode)
            poison()
            try:
                got = enc.cuda()(x.cuda())
            finally:
                ops._cuda_fused("auto")
        return rel_err(got, want)
    return run


def _wmma_ld() -> str:
    """The bf16 kernels' shared-memory leading dimension the installed library was built with
    (CMake SATCLIP_WMMA_LD; a build with the other value is the other side of that comparison)."""
    from satclip.ops import extension
    return str(extension.backend_info()["extension"]["build"].get("wmma_ld", "?"))


def _fused_decisions() -> list:
    from satclip.ops import extension
    return extension.cuda_fused_choices()["decisions"]


def _hidden_bf16_cases():
    # 512 and 264: the tensor-core kernel (K % 8 == 0); 260: refused by it, cuBLAS instead
    return [(f"hidden={h} bf16 {mode} n={n}", _encoder_case(10, h, torch.float32, "bf16", mode, n, "contiguous"), 2e-2)
            for h in (512, 264, 260) for mode in ("fused", "cublas") for n in (129, 3000)]


def _encoder_cases():
    cases = []
    tols = {"float32": 1e-4, "tf32": 3e-3, "bf16": 2e-2, "float16": 3e-3}  # every mode of PRECISIONS
    assert set(tols) == set(PRECISIONS), f"a tolerance per precision mode: {sorted(set(PRECISIONS) ^ set(tols))}"
    for L in (10, 40):
        for precision, tol in tols.items():
            for mode in ("fused", "cublas"):
                for n, layout in ((0, "contiguous"), (129, "strided"), (3000, "contiguous")):
                    cases.append((f"L={L} float32 {precision} {mode} n={n} {layout}",
                                  _encoder_case(L, 512, torch.float32, precision, mode, n, layout), tol))
        cases.append((f"L={L} float64 auto n=1000",
                      _encoder_case(L, 512, torch.float64, "float32", "auto", 1000, "strided"), 1e-10))
    return cases


def _big_index_cases():
    """Outputs whose flat index passes 2^31: checked on sampled rows against the CPU op."""
    from satclip.ops import ops
    n = (1 << 22) + 129

    def sample_rows():
        g = torch.Generator().manual_seed(0)
        return torch.cat([torch.arange(64), torch.randint(0, n, (512,), generator=g), torch.arange(n - 64, n)])

    def first_layer(precision):
        def run():
            x = points(n, torch.float32)
            w, b = _layer(10, 512, torch.float32)
            got = ops.sh_siren_layer(x.cuda(), 10, w.cuda(), b.cuda(), 30.0, precision)  # 2^31 + 66k elements
            rows = sample_rows()
            want = ops.sh_siren_layer(x[rows], 10, w, b, 30.0, precision)
            return rel_err(got[rows.cuda()].float(), want.float())
        return run

    def sh():
        x = points(n, torch.float32)
        got = ops.spherical_harmonics(x.cuda(), 23)  # 529 features: 2.2e9 elements
        rows = sample_rows()
        return rel_err(got[rows.cuda()], ops.spherical_harmonics(x[rows], 23))
    return [("first layer L=10 H=512 float32 n=2^22+129", first_layer("float32"), 1e-4),
            ("first layer L=10 H=512 bf16 n=2^22+129", first_layer("bf16"), 3e-2),
            ("SH L=23 float32 n=2^22+129", sh, 1e-4)]


FAMILIES = {"sh": _sh_cases, "first_layer": _first_layer_cases, "hidden_bf16": _hidden_bf16_cases,
            "encoder": _encoder_cases, "big_index": _big_index_cases}


def smoke(family: str, dry: bool) -> int:
    ready, why = (False, "dry run") if dry else cuda_ready()
    step = f"smoke-{family}"
    cases = FAMILIES[family]()
    failed = 0
    for k, (name, fn, tol) in enumerate(cases):
        if not ready:
            emit(step, name, "skipped", reason=why)
            continue
        try:
            err = fn()
            torch.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then the family goes on or stops
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            emit(step, name, "failed", error=msg)
            failed += 1
            if "CUDA" in msg or "cuda" in msg:  # a sticky CUDA error fails everything after it
                for later, _, _ in cases[k + 1:]:
                    emit(step, later, "skipped", reason="after a CUDA error in this process")
                return 1
            continue
        ok = err <= tol
        failed += not ok
        emit(step, name, "ok" if ok else "failed", max_rel_err=err, tol=tol)
    return int(failed > 0)


# -- timings ---------------------------------------------------------------------------------------

def best_ms(fn, rounds: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(rounds):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        best = min(best, e0.elapsed_time(e1))
    return best


def eager_encoder(enc, precision: str):
    """The pure-PyTorch fallback of the fused op, on the same device and precision."""
    from satclip import functional as F
    from satclip.ops import reference as ref
    L = enc.legendre_polys
    layers = list(enc.nnet.layers)
    w = [enc.folded_first_weight()] + [l.weight for l in layers[1:]] + [enc.nnet.last_layer.weight]
    b = [l.bias for l in layers] + [enc.nnet.last_layer.bias]
    chunk = F.default_tile_points(L, 4, "cuda")
    return lambda x: ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, chunk, precision)


def _fused_modes(precision: str) -> tuple[str, ...]:
    """SATCLIP_CUDA_FUSED settings worth timing: float16 runs cuBLAS only (no fused kernel yet)."""
    return ("auto",) if precision == "float16" else ("fused", "cublas", "auto")


def timings(dry: bool) -> int:
    from satclip.ops import ops
    from satclip.ops import reference as ref
    ready, why = (False, "dry run") if dry else cuda_ready()
    n = 1 << 20
    configs = [(L, p, m) for L in (10, 40) for p in PRECISIONS for m in _fused_modes(p)]
    names = ([f"encoder L={L} {p} {m}" for L, p, m in configs] + [f"encoder L={L} bf16 fused ld={_wmma_ld()}"
             for L in (10, 40)] + [f"eager encoder L={L} {p}" for L in (10, 40)
             for p in PRECISIONS] + ["SH forward L=40 float32", "SH backward L=40 float32",
                                                      "training step L=10 float32", "eager training step L=10 float32"])
    if not ready:
        for name in names:
            emit("timings", name, "skipped", reason=why)
        return 0
    gpu = torch.cuda.get_device_name()
    peak = next((v for k, v in HBM.items() if k in gpu), None)
    x = points(n, torch.float32).cuda()
    failed = 0

    def record(name, fn, **extra):
        nonlocal failed
        try:
            ms = best_ms(fn)
            emit("timings", name, "ok", ms=ms, points_per_s=n / (ms / 1e3), gpu=gpu, n=n, **extra)
            return ms
        except Exception as exc:  # noqa: BLE001
            failed += 1
            emit("timings", name, "failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            return None

    with torch.no_grad():
        for L in (10, 40):
            enc = _encoder(L, 512, out=256).cuda()
            for p in PRECISIONS:
                enc.precision = p
                eager = eager_encoder(enc, p)
                t_eager = record(f"eager encoder L={L} {p}", lambda: eager(x))
                for m in _fused_modes(p):
                    ops._cuda_fused(m)
                    t = record(f"encoder L={L} {p} {m}", lambda: enc(x),
                               **({} if m != "auto" else {"choices": _fused_decisions()}))
                    if t and t_eager:
                        emit("timings", f"encoder L={L} {p} {m} vs eager", "ok", ratio=t_eager / t)
                ops._cuda_fused("auto")
            enc.precision = "bf16"  # the bf16 kernels at the library's shared-memory leading dimension
            ops._cuda_fused("fused")
            record(f"encoder L={L} bf16 fused ld={_wmma_ld()}", lambda: enc(x))
            ops._cuda_fused("auto")
        ms = record("SH forward L=40 float32", lambda: ops.spherical_harmonics(x, 40))
        if ms:
            bw = n * 1600 * 4 / (ms / 1e3)
            emit("timings", "SH forward L=40 float32 output bandwidth", "ok", bytes_per_s=bw,
                 hbm_share=(bw / peak) if peak else None)
        gy = torch.randn(n, 1600, device="cuda")
        record("SH backward L=40 float32", lambda: ops.spherical_harmonics_backward(gy, x, 40))
    enc = _encoder(10, 512, out=256).cuda().train()
    xs = x[: 1 << 16].clone().requires_grad_(True)

    def step():
        enc.zero_grad(set_to_none=True)
        enc(xs).pow(2).mean().backward()

    def eager_step():
        feats = ref.spherical_harmonics(xs, 10)
        h = torch.sin(30.0 * torch.nn.functional.linear(feats, enc.folded_first_weight(), enc.nnet.layers[0].bias))
        h = torch.sin(torch.nn.functional.linear(h, enc.nnet.layers[1].weight, enc.nnet.layers[1].bias))
        torch.nn.functional.linear(h, enc.nnet.last_layer.weight, enc.nnet.last_layer.bias).pow(2).mean().backward()
    t = record("training step L=10 float32", step)
    t_eager = record("eager training step L=10 float32", eager_step)
    if t and t_eager:
        emit("timings", "training step L=10 float32 vs eager", "ok", ratio=t_eager / t)
    return int(failed > 0)


# -- a small run of every kernel (compute-sanitizer, ncu) -------------------------------------------

def kernels(dry: bool) -> int:
    from satclip.ops import ops
    ready, why = (False, "dry run") if dry else cuda_ready()
    if not ready:
        print(f"kernels: skipped ({why})")
        return 0
    torch.manual_seed(0)
    for L in (3, 33, 65):
        x = points(70).cuda().requires_grad_(True)
        ops.spherical_harmonics(x, L).sum().backward()
    for L, dt in ((3, torch.float32), (33, torch.float32), (40, torch.float32), (64, torch.float64)):
        w, b = _layer(L, 70, dt)
        ops.sh_siren_layer(points(67, dt).cuda(), L, w.cuda(), b.cuda(), 30.0)
        if dt == torch.float32:
            ops.sh_siren_layer(points(67, dt).cuda(), L, w.cuda(), b.cuda(), 30.0, "bf16")
    enc = _encoder(10, 64, out=16).cuda()
    x = points(50).cuda()
    enc.train()(x).sum().backward()
    with torch.no_grad():
        enc.eval()
        ops._cuda_fused("fused")  # every fused kernel, the bf16 hidden layer included
        for precision in PRECISIONS:
            enc.precision = precision
            enc(x)
    torch.cuda.synchronize()
    print("kernels: done")
    return 0


# -- summary.md ------------------------------------------------------------------------------------

KEY = ("points_per_s", "ratio", "hbm_share", "max_rel_err", "ms")
# (label, case, figure, goal): issue 19's targets, judged from this run's results
TARGETS = [("L=40 encoder float32 >= 2e7 points/s", "encoder L=40 float32 auto", "points_per_s", 2e7),
           ("L=40 encoder bf16 >= 2e8 points/s", "encoder L=40 bf16 auto", "points_per_s", 2e8),
           ("L=40 float32 >= 2x eager", "encoder L=40 float32 auto vs eager", "ratio", 2.0),
           ("L=40 bf16 >= 2x eager", "encoder L=40 bf16 auto vs eager", "ratio", 2.0),
           ("SH forward L=40 float32 >= 70% of HBM bandwidth", "SH forward L=40 float32 output bandwidth",
            "hbm_share", 0.7)]


def summary() -> int:
    steps = []
    tsv = OUT / "steps.tsv"
    if tsv.exists():
        steps = [line.split("\t") for line in tsv.read_text().splitlines() if line.strip()]
    results = []
    path = OUT / "results.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a killed step
    lines = ["# GPU check summary", "", "| step | status | seconds | cases ok / failed / skipped | key figures |",
             "| --- | --- | --- | --- | --- |"]
    for row in steps:
        name, status, secs = (row + ["", "", ""])[:3]
        mine = [r for r in results if r.get("step") == name]
        counts = "/".join(str(sum(r["status"] == s for r in mine)) for s in ("ok", "failed", "skipped")) if mine else "-"
        figs = []
        for r in mine:
            if r["status"] == "failed":
                figs.append(f"FAILED {r['case']}: {r.get('error') or r.get('max_rel_err')}")
        for r in mine:
            if r["status"] == "ok" and any(k in r for k in ("points_per_s", "ratio", "hbm_share")):
                v = next(f"{k}={r[k]:.3g}" for k in KEY if isinstance(r.get(k), (int, float)))
                figs.append(f"{r['case']}: {v}")
        shown = "; ".join(figs[:12]) + (f"; ... ({len(figs) - 12} more in results.jsonl)" if len(figs) > 12 else "")
        lines.append(f"| {name} | {status} | {secs} | {counts} | {shown or '-'} |")
    lines += ["", "## Targets (H100-class)", "", "| target | figure | met |", "| --- | --- | --- |"]
    for label, case, key, goal in TARGETS:
        r = next((r for r in results if r.get("case") == case and r.get("status") == "ok" and key in r), None)
        v = r.get(key) if r else None
        lines.append(f"| {label} | {f'{v:.3g}' if isinstance(v, (int, float)) else 'not measured'} | "
                     f"{'-' if not isinstance(v, (int, float)) else ('yes' if v >= goal else 'no')} |")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["smoke", "timings", "kernels", "summary"])
    p.add_argument("family", nargs="?", choices=sorted(FAMILIES))
    p.add_argument("--dry", action="store_true", help="enumerate the cases, run nothing on a GPU")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.command == "smoke":
        if args.family is None:
            p.error("smoke needs a FAMILY")
        return smoke(args.family, args.dry)
    return {"timings": timings, "kernels": kernels}[args.command](args.dry) if args.command != "summary" else summary()


if __name__ == "__main__":
    sys.exit(main())

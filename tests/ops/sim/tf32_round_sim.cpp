// The CUDA kernels' TF32 rounding (csrc/cuda/tf32_round.h) compiled for the CPU, so that
// tests/ops/test_tf32_round_sim.py compares it with the reference's rounding bit for bit.
#include <cstdint>

#include "cuda/tf32_round.h"

extern "C" {
void round_tf32_sim(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = satclip::kernels::Tf32(x[i]).v;
}
}

// quantize_int8.h -- the int8 output's per-point quantisation, one definition for the CPU and
// CUDA kernels (and the pure-PyTorch twin, satclip/ops/reference.py, which follows it):
//
//   scale = max_j |e_j| / 127   (float32 division; 1 for an all-zero row, NaN for a row with a NaN)
//   code_j = round_half_even(e_j / scale)   (float32 division; 0 where that is NaN)
//
// so that e_j ~= code_j * scale with an error of at most scale / 2. Codes stay in [-127, 127]
// without a clip: |e_j| / fl(max|e| / 127) <= 127 * (1 + 2^-23), which rounds to 127; -128 is
// never a code (the Zarr output marks unwritten cells with it).
#pragma once

#include <cmath>
#include <cstdint>

#include "sh_math.h"  // SATCLIP_HD

namespace satclip {
namespace kernels {

SATCLIP_HD float int8_scale(float max_abs) {
  if (max_abs != max_abs) return max_abs;  // NaN row: NaN scale
  const float s = max_abs / 127.0f;
  return s == 0.0f ? 1.0f : s;
}

SATCLIP_HD int8_t int8_code(float e, float scale) {
  const float q = nearbyintf(e / scale);  // the current rounding mode: nearest, ties to even
  return q == q ? static_cast<int8_t>(static_cast<int>(q)) : int8_t(0);
}

}  // namespace kernels
}  // namespace satclip

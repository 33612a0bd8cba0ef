// tf32_round.h -- a float rounded to the nearest TF32 value (10 mantissa bits, ties to even), kept
// as a float: the tf32 mode's operand rounding, the same bit operation as the reference twin's
// (satclip/ops/reference.py, round_operand). __host__ __device__: the CPU glue's rounding pass and
// the CUDA kernels that store tf32 operands (cuda/tf32_round.h) both use it.
#pragma once

#include <cstdint>
#include <cstring>

#include "sh_math.h"  // SATCLIP_HD

namespace satclip {

SATCLIP_HD float round_tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u = (u + 0xFFFu + ((u >> 13) & 1u)) & ~0x1FFFu;
  memcpy(&x, &u, sizeof u);
  return x;
}

}  // namespace satclip

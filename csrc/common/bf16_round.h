// bf16_round.h -- float32 -> bf16 rounding in scalar code: nearest, ties to even, as torch's
// float -> bfloat16 conversion and the reference twin (satclip/ops/reference.py, round_operand);
// a NaN stays a (quiet) NaN. Torch-free: the CPU glue and the CPU kernels both use it.
#pragma once

#include <cstdint>
#include <cstring>

namespace satclip {

// The rounded value's float32 bit pattern (low 16 bits zero); `>> 16` gives the bf16 bits.
inline uint32_t bf16_rounded_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  return nan ? (u | 0x00400000u) & 0xffff0000u : (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
}

}  // namespace satclip

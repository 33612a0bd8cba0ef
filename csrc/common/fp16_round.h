// fp16_round.h -- float32 -> IEEE half rounding in scalar code, the result kept as a float32
// value: nearest, ties to even, as torch's float -> float16 conversion and the reference twin
// (satclip/ops/reference.py, round_operand): 10 mantissa bits in the normal range (the same cut
// as tf32's), multiples of 2^-24 below 2^-14 (half's subnormals), +-inf from 65520 on (half's
// largest finite value is 65504), NaN and inf kept. Torch-free: the CPU glue uses it.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace satclip {

inline float fp16_round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const uint32_t sign = u & 0x80000000u, a = u ^ sign;
  uint32_t r;
  if (a >= 0x7f800000u) {
    return x;                        // inf, NaN
  } else if (a >= 0x477ff000u) {     // >= 65520: rounds beyond half's range
    r = 0x7f800000u;
  } else if (a >= 0x38800000u) {     // half's normal range, >= 2^-14: drop 13 bits, ties to even
    r = (a + 0xfffu + ((a >> 13) & 1u)) & ~uint32_t(0x1fff);
  } else {                           // half's subnormals: a multiple of 2^-24 (exact scaling by 2^24)
    float f;
    std::memcpy(&f, &a, sizeof f);
    const float q = std::nearbyint(f * 16777216.0f) * (1.0f / 16777216.0f);
    std::memcpy(&r, &q, sizeof r);
  }
  r |= sign;
  float out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

}  // namespace satclip

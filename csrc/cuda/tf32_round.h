// tf32_round.h -- a float rounded to the nearest TF32 value (10 mantissa bits, ties to even),
// kept as a float: the tf32 precision mode's operand rounding, applied by the kernels that
// produce an operand (the SH kernel's store, the sine pass) instead of separate elementwise
// passes over it. The same bit operation as round_to_tf32 in ../glue/ops_cpu.cpp and
// satclip.ops.reference.round_operand (tests/ops/test_tf32_round_sim.py compares them on the CPU).
#pragma once

#include <cstdint>
#include <cstring>

#include "../common/sh_math.h"  // SATCLIP_HD

namespace satclip {
namespace kernels {

SATCLIP_HD float round_tf32(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u = (u + 0xFFFu + ((u >> 13) & 1u)) & ~0x1FFFu;
  memcpy(&x, &u, sizeof u);
  return x;
}

// A float stored TF32-rounded: the Out type of the SH kernel in the tf32 mode (same layout as
// float, so a float output buffer is written through a Tf32 pointer).
struct Tf32 {
  float v;
  Tf32() = default;
  SATCLIP_HD explicit Tf32(float x) : v(round_tf32(x)) {}
};
static_assert(sizeof(Tf32) == sizeof(float), "Tf32 must have float's layout");

}  // namespace kernels
}  // namespace satclip

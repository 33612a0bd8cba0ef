// tf32_round.h -- the tf32 precision mode's operand type on CUDA: a float stored TF32-rounded
// (../common/tf32_round.h, the one rounding the CPU glue uses too), written by the kernels that
// produce an operand (the SH kernel's store, the sine pass) instead of separate elementwise
// passes over it (tests/ops/test_tf32_round_sim.py compares it with the reference on the CPU).
#pragma once

#include <cstdint>
#include <cstring>

#include "../common/tf32_round.h"

namespace satclip {
namespace kernels {

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

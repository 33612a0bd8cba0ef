// operand_rounding_cpu.h -- the CPU glue's rounding of GEMM operands to a precision mode's format
// (bf16, tf32, IEEE half), kept float32: a float32 GEMM of rounded operands is what a tensor core
// computes in that mode (exact products, float32 sums). The scalar roundings live once in
// common/ (bf16_round.h, tf32_round.h, fp16_round.h); these are their parallel passes.
#pragma once

#include <cstdint>

#include "precision.h"
#include "stable_tensor.h"

namespace satclip {

using RoundFn = void (*)(const float* src, float* dst, int64_t n);

// The rounding of each reduced precision's operands (nullptr for float32).
RoundFn rounding_of(Precision p);

// src rounded to bf16, as bf16 bit patterns (MKL's bf16 GEMM operand).
void round_to_bf16_bits(const float* src, uint16_t* dst, int64_t n);

// x rounded to p's operand format (a new contiguous float32 tensor; x itself for float32).
Tensor round_operand(const Tensor& x, Precision p);

}  // namespace satclip

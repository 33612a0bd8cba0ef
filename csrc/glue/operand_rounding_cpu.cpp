// operand_rounding_cpu.cpp -- see operand_rounding_cpu.h.
#include "operand_rounding_cpu.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../common/bf16_round.h"
#include "../common/fp16_round.h"
#include "../common/tf32_round.h"
#include "cpu_isa.h"

namespace satclip {
namespace {

constexpr int64_t kGrain = 1 << 16;

void round_to_bf16(const float* src, float* dst, int64_t n) {
  torch::stable::parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const uint32_t r = bf16_rounded_bits(src[i]);
      std::memcpy(dst + i, &r, sizeof r);
    }
  });
}

void round_to_tf32(const float* src, float* dst, int64_t n) {
  torch::stable::parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) dst[i] = round_tf32(src[i]);
  });
}

// float16 with F16C (every AVX2 CPU has it; used from SATCLIP_CPU_ISA=avx2 on): 8 values per
// instruction pair (VCVTPS2PH with round-to-nearest, VCVTPH2PS: the same values, the conversion
// being IEEE's); the scalar rounding elsewhere.
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void round_fp16_block_f16c(const float* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = fp16_round(src[i]);
}
#endif

void round_to_fp16(const float* src, float* dst, int64_t n) {
#if defined(__x86_64__)
  // SATCLIP_CPU_ISA=base keeps to baseline x86-64: the scalar rounding (the base-ISA tests run it)
  static const bool has_f16c = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  }();
  const bool f16c = has_f16c && isa_in_use() >= kAvx2;
#else
  constexpr bool f16c = false;
#endif
  torch::stable::parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
#if defined(__x86_64__)
    if (f16c) return round_fp16_block_f16c(src + lo, dst + lo, hi - lo);
#endif
    for (int64_t i = lo; i < hi; ++i) dst[i] = fp16_round(src[i]);
  });
}

}  // namespace

void round_to_bf16_bits(const float* src, uint16_t* dst, int64_t n) {
  torch::stable::parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) dst[i] = static_cast<uint16_t>(bf16_rounded_bits(src[i]) >> 16);
  });
}

RoundFn rounding_of(Precision p) {
  switch (p) {
    case Precision::kBf16: return round_to_bf16;
    case Precision::kTf32: return round_to_tf32;
    case Precision::kFloat16: return round_to_fp16;
    default: return nullptr;
  }
}

Tensor round_operand(const Tensor& x, Precision p) {
  if (p == Precision::kFloat32) return x;
  const Tensor src = torch::stable::contiguous(x);
  Tensor dst = torch::stable::empty_like(src);
  rounding_of(p)(src.const_data_ptr<float>(), dst.mutable_data_ptr<float>(), src.numel());
  return dst;
}

}  // namespace satclip

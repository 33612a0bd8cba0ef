// kernels_cpu.h -- torch-free CPU kernels (raw pointers, sizes, a thread count).
//
// kernels_cpu.cpp is compiled once per instruction set (a baseline x86-64 build, an AVX2+FMA
// build and an AVX-512 build with 512-bit vectors, each in its own namespace); the torch glue
// picks one at run time (the best the CPU has, or SATCLIP_CPU_ISA). All arrays are row-major and contiguous unless a stride is given.
#pragma once

#include <cstdint>

namespace satclip {
namespace kernels {

#define SATCLIP_DECLARE_CPU_KERNELS(ISA)                                                          \
  namespace ISA {                                                                                 \
  /* lonlat: [N, 2] (lon, lat) degrees with strides (s0, s1); out: [N, L*L] orthonormal SH. */   \
  template <typename T>                                                                           \
  void sh_fwd(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, T* out, const T* scale,   \
              int threads);                                                                          \
  /* grad: [N, L*L] (row stride g0, feature stride g1); out: [N, 2] d/d(lon, lat) in deg^-1. */  \
  template <typename T>                                                                           \
  void sh_bwd(const T* grad, int64_t g0, int64_t g1, const T* lonlat, int64_t s0, int64_t s1,     \
              int64_t n, int L, T* out, int threads);                                             \
  /* z: [rows, H] pre-activation W x + b, replaced in place by sin(w0 * z * mask); cos_out     \
     (nullable) receives cos(w0 * z * mask); mask (nullable) is [rows, H]. */                   \
  template <typename T>                                                                           \
  void siren_epilogue(T* z, const T* mask, T w0, int64_t numel, T* cos_out, int threads);         \
  /* gz = gy * w0 * cos (* mask): the gradient w.r.t. the pre-activation W x + b. */              \
  template <typename T>                                                                           \
  void siren_grad_epilogue(const T* gy, const T* cos, const T* mask, T w0, int64_t numel, T* gz, \
                           int threads);                                                          \
  /* emb: [n, d] float32 rows (row stride ld); codes: [n, d] int8, scale: [n] float32, by      \
     common/quantize_int8.h (the int8 output's per-point quantisation). */                      \
  void quantize_int8(const float* emb, int64_t n, int64_t d, int64_t ld, int8_t* codes, float* scale, \
                     int threads);                                                                \
  }

SATCLIP_DECLARE_CPU_KERNELS(base)
SATCLIP_DECLARE_CPU_KERNELS(avx2)
SATCLIP_DECLARE_CPU_KERNELS(avx512)
#undef SATCLIP_DECLARE_CPU_KERNELS

}  // namespace kernels
}  // namespace satclip

// encoder_bf16_avx512.h -- the SH + SIREN encoder's bf16 mode on AVX512-BF16 (VDPBF16PS):
// bf16 operands, float32 products and sums, float32 bias, w0 and sine, float32 output. Torch-free
// (raw pointers, sizes, a thread count); compiled with -mavx512bf16 and run only where the CPU has
// it (glue/ops_cpu.cpp checks). Declared without intrinsics so the glue includes it anywhere.
//
// Why a kernel of its own: torch's CPU bf16 matmul (oneDNN) rounds its result to bf16, MKL's
// cblas_gemm_bf16bf16f32 does not use bf16 instructions on AMD CPUs, and torch exports no
// bf16 x bf16 -> float32 GEMM (aten::mm.dtype has no CPU kernel through 2.14).
//
// Layouts (all row-major):
//   weights [N, K] float32 -> packed bf16 (pack_weight_bf16): N padded to a multiple of 64
//     (kBlockN, four 16-lane vectors), K padded to even; block b, k-pair p, column j, t in {0, 1}:
//     packed[((b * K2 + p) * 64 + j) * 2 + t] = bf16(W[64 b + j, 2 p + t]), zero in the padding.
//     So one 64-byte load gives 16 columns' (k, k+1) pairs, VDPBF16PS's operand layout.
//   bias: float32 [Np] (Np = N padded to 64, zero in the padding).
//   activations between layers: bf16 bit patterns [rows, K2 * 2] (K even, a zero column when the
//     layer width is odd); the last layer writes float32 rows of the caller's output.
// Rounding: float -> bf16 to nearest, ties to even (torch's conversion, and the reference twin's).
// VDPBF16PS treats bf16 subnormal inputs as zero and flushes subnormal results (|x| < 1.2e-38),
// as the SH kernels' flush-to-zero does.
#pragma once

#include <cstddef>
#include <cstdint>

namespace satclip {
namespace kernels {
namespace avx512bf16 {

constexpr int64_t kBlockN = 64;

struct PackedLayer {
  const uint16_t* weight;  // pack_weight_bf16's layout
  const float* bias;       // [padded_n(n)]
  int64_t n, k;            // output and input width (unpadded)
  float w0;                // sin(w0 * (x W^T + b)) when `sine`
  bool sine;               // false: the linear output layer
};

inline int64_t padded_n(int64_t n) { return (n + kBlockN - 1) / kBlockN * kBlockN; }
inline int64_t padded_k(int64_t k) { return (k + 1) / 2 * 2; }
inline int64_t packed_weight_size(int64_t n, int64_t k) { return padded_n(n) * padded_k(k); }

// packed (packed_weight_size(n, k) values) from w ([n, k], row stride ldw).
void pack_weight_bf16(const float* w, int64_t ldw, int64_t n, int64_t k, uint16_t* packed);

// out[i, :] = encoder(lonlat[i]) for i < npts: SH of degree < L (lonlat strides s0, s1, degrees),
// then the layers (all but the last with a sine). Each thread runs blocks of points through every
// layer, so activations stay in its cache; `threads` OpenMP threads.
void encoder_forward(const float* lonlat, int64_t s0, int64_t s1, int64_t npts, int L, const PackedLayer* layers,
                     int nlayers, float* out, int64_t ldo, int threads);

}  // namespace avx512bf16
}  // namespace kernels
}  // namespace satclip

// quantize_int8.cu -- the int8 output's per-point quantisation on the GPU, before the copy to the
// host (the bus then carries 1 byte per value instead of 4).
//
// What: scale[r] = max_j |emb[r, j]| / 127 (1 for a zero row, NaN for a row with a NaN),
// codes[r, j] = round_half_even(emb[r, j] / scale[r]) (common/quantize_int8.h, the same
// functions as the CPU kernel, so both devices give the same bytes).
// Layouts: emb [n, d] float32 rows, row stride ld (unit column stride); codes [n, d] int8
// contiguous; scale [n] float32.
// Launch geometry: one warp per row (8 rows per 256-thread block, grid-stride over rows); the
// lanes stride over the row, the maximum is a shuffle reduction, then each lane writes its codes.
// Numerics: exact (a maximum, one float32 division per value, a rounding).
#include "quantize_int8.h"

#include "../common/quantize_int8.h"

namespace satclip {
namespace kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;

__global__ void quantize_int8_kernel(const float* __restrict__ emb, int64_t n, int64_t d, int64_t ld,
                                     int8_t* __restrict__ codes, float* __restrict__ scale) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp; r < n;
       r += static_cast<int64_t>(gridDim.x) * kRowsPerBlock) {
    const float* x = emb + r * ld;
    float m = 0.0f;
    int nan = 0;
    for (int64_t j = lane; j < d; j += kWarp) {
      const float a = fabsf(x[j]);
      m = a > m ? a : m;
      nan |= static_cast<int>(a != a);
    }
    for (int off = kWarp / 2; off > 0; off /= 2) {
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
      nan |= __shfl_xor_sync(0xffffffffu, nan, off);
    }
    const float s = int8_scale(nan ? __int_as_float(0x7fc00000) : m);
    if (lane == 0) scale[r] = s;
    int8_t* c = codes + r * d;
    for (int64_t j = lane; j < d; j += kWarp) c[j] = int8_code(x[j], s);
  }
}

}  // namespace

cudaError_t launch_quantize_int8(const float* emb, int64_t n, int64_t d, int64_t ld, int8_t* codes, float* scale,
                                 cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int64_t want = (n + kRowsPerBlock - 1) / kRowsPerBlock;
  const int blocks = static_cast<int>(want < 65535 * 8 ? want : 65535 * 8);
  quantize_int8_kernel<<<blocks, kWarp * kRowsPerBlock, 0, stream>>>(emb, n, d, ld, codes, scale);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace satclip

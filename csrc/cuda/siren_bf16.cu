// siren_bf16.cu -- a hidden SIREN layer of the bf16 mode on tensor cores with the bias, w0 and
// sine in the epilogue: the float32 pre-activation never leaves the chip, and the output is
// stored as bf16 (the next layer's operand). Per step, 64 features of 128 points (A, via
// 16-byte loads, transposed into shared memory) and the matching 64 rows of W^T (B); 8 warps
// of 2 x 4 WMMA tiles; tiles kWmmaLd elements apart (bf16_tile.h); phases in
// bf16_tile.h, simulated on the CPU in tests/ops/sim/.
#include "siren_bf16.h"

#include "bf16_tile.h"
#include "sh_siren_layer.h"
#include "wmma_bf16.cuh"

namespace satclip {
namespace kernels {
namespace {

using namespace fused;

template <int LD>
__global__ void __launch_bounds__(kThreads, 2)
    siren_bf16_kernel(const __nv_bfloat16* __restrict__ x, int64_t n, int64_t K, const __nv_bfloat16* __restrict__ wt,
                      const float* __restrict__ bias, int H, float w0, __nv_bfloat16* __restrict__ out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using Bf = __nv_bfloat16;
  constexpr int R = 16 * kHiddenBlocks;
  extern __shared__ __align__(128) unsigned char smem_siren[];
  Bf* A = reinterpret_cast<Bf*>(smem_siren);
  Bf* B = A + R * LD;
  float* scratch = reinterpret_cast<float*>(B + R * LD);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * Bf16Tile::M;
  const int n0 = static_cast<int>(blockIdx.y) * Bf16Tile::N;
  WmmaBf16::Acc acc[Bf16Tile::FM][Bf16Tile::FN];
#pragma unroll
  for (int i = 0; i < Bf16Tile::FM; ++i) {
#pragma unroll
    for (int j = 0; j < Bf16Tile::FN; ++j) WmmaBf16::zero(acc[i][j]);
  }
  for (int64_t k0 = 0; k0 < K; k0 += R) {
    const int64_t left = (K - k0 + 15) / 16;
    const int nb = static_cast<int>(left < kHiddenBlocks ? left : kHiddenBlocks);
    load_a_blocks<Bf>(tid, x, n, K, row0, k0, nb, A, LD);
    load_b_rows<Bf>(tid, wt, K, H, k0, 16 * nb, n0, B, LD);
    __syncthreads();
    mma_warp<WmmaBf16, Bf>(warp, A, 0, nb, R, B, acc, LD);
    __syncthreads();
  }
  epilogue_warp(warp, lane, acc, scratch, bias, w0, n, H, row0, n0, out);
#endif
}

}  // namespace

cudaError_t launch_siren_bf16(const __nv_bfloat16* x, int64_t n, int64_t K, const __nv_bfloat16* wt,
                              const float* bias, int H, float w0, __nv_bfloat16* out, cudaStream_t stream) {
  if (n == 0 || H == 0) return cudaSuccess;
  if (K % 8 != 0 || H > 65535 * Bf16Tile::N) return cudaErrorInvalidValue;
  const size_t bytes = bf16_smem_bytes<__nv_bfloat16>(16 * kHiddenBlocks, kWmmaLd);  // <= 43 KB: no opt-in needed
  const int64_t tiles = (n + Bf16Tile::M - 1) / Bf16Tile::M;
  if (tiles > 0x7fffffff) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>((H + Bf16Tile::N - 1) / Bf16Tile::N));
  siren_bf16_kernel<kWmmaLd><<<grid, kThreads, bytes, stream>>>(x, n, K, wt, bias, H, w0, out);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace satclip

// wmma_bf16.cuh -- bf16 WMMA fragments (16 x 16 x 16, float accumulators) behind the small
// interface that mma_warp (bf16_tile.h) expects; tests/ops/sim/ implements the same
// interface with scalar tiles. sm_80+.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include "bf16_tile.h"

namespace satclip {
namespace kernels {

struct WmmaBf16 {
  using A = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major>;
  using B = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major>;
  using Acc = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
  static __device__ void load_a(A& f, const __nv_bfloat16* p, int ldm) { nvcuda::wmma::load_matrix_sync(f, p, ldm); }
  static __device__ void load_b(B& f, const __nv_bfloat16* p, int ldm) { nvcuda::wmma::load_matrix_sync(f, p, ldm); }
  static __device__ void mma(Acc& c, const A& a, const B& b) { nvcuda::wmma::mma_sync(c, a, b, c); }
  static __device__ void store(float* p, const Acc& c, int ldm) {
    nvcuda::wmma::store_matrix_sync(p, c, ldm, nvcuda::wmma::mem_row_major);
  }
  static __device__ void zero(Acc& c) { nvcuda::wmma::fill_fragment(c, 0.0f); }
};

// The warp's epilogue: each accumulator tile through its scratch (bias, w0, sine, bf16 store).
__device__ __forceinline__ void epilogue_warp(int warp, int lane, WmmaBf16::Acc (&acc)[fused::Bf16Tile::FM][fused::Bf16Tile::FN],
                                              float* scratch, const float* bias, float w0, int64_t n, int H,
                                              int64_t row0, int n0, __nv_bfloat16* out) {
#pragma unroll
  for (int i = 0; i < fused::Bf16Tile::FM; ++i) {
#pragma unroll
    for (int j = 0; j < fused::Bf16Tile::FN; ++j) {
      WmmaBf16::store(scratch + warp * 256, acc[i][j], 16);
      __syncwarp();
      fused::epi_lane<__nv_bfloat16>(warp, lane, i, j, scratch, bias, w0, n, H, row0, n0, out);
      __syncwarp();
    }
  }
}

}  // namespace kernels
}  // namespace satclip

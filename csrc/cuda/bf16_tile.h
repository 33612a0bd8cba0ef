// bf16_tile.h -- the phases of the bf16 tensor-core SIREN kernels, torch-free and compilable
// by nvcc and a host compiler: the kernels run them with WMMA fragments (wmma_bf16.cuh),
// tests/ops/sim/ with a scalar stand-in (same tile shapes, layouts and leading dimensions).
//   sh_siren_layer.cu: the first layer, its input generated on chip (SH of the coordinates);
//   siren_bf16.cu:     a hidden layer, its input read from global memory (bf16 activations).
//
// What a block computes (the bf16 precision mode)
//   out[i, c] = bf16(sin(w0 * (sum_k X16[i, k] * W16[c, k] + bias[c])))
//   X16 = bf16(SH(lonlat_i)) for the first layer, the previous layer's bf16 output otherwise;
//   products of bf16 values accumulated in float32 on tensor cores, bias/w0/sine in float32,
//   stored as bf16 (nearest even): the operand of the next layer in that mode.
//
// Tile: 128 points x 128 outputs, 256 threads = 8 warps as 4 (points) x 2 (outputs); a warp
// owns 32 x 64 outputs = 2 x 4 WMMA tiles of 16 x 16 (k-step 16).
// Shared memory (LD: the leading dimension of A and B in elements, a kernel template parameter,
// 128 or 136; kWmmaLds):
//   A  [R][LD] bf16: feature k of the tile's points, point-contiguous in the first 128 (WMMA
//                    matrix_a, col-major, ldm LD), consumed in 16-row blocks
//   B  [R][LD] bf16: rows k of W^T in the first 128 (matrix_b, row-major, ldm LD), loaded per
//                    batch of blocks
//   With LD = 128 every row starts 256 bytes after the last, in the same bank: a fragment load
//   reads 8 rows that collide (8-way bank conflict); LD = 136 shifts each row by 16 bytes.
//   scratch [8][16][16] float: one accumulator tile of each warp, for the epilogue
// First layer: the SH features are produced band by band (2l+1 features, not a multiple of
// 16), so A is a ring of R rows (R a multiple of 16 with room for 15 leftover rows plus the
// widest band): after band l, every complete 16-row block is consumed at once. A block never
// straddles the wrap because blocks start at multiples of 16. The rows after the last feature
// are zeroed to complete the last block (W^T rows past L*L are zero as well). Generation uses
// the float tile's thread mapping (Tile<float>, 128 points, 2 threads per point).
// Hidden layer: A holds kHiddenBlocks blocks (64 features) per step, loaded with 16-byte reads
// (8 features of one point per thread), zero past N and K.
#pragma once

#include "sh_siren_tile.h"

namespace satclip {
namespace kernels {
namespace fused {

struct Bf16Tile {
  static constexpr int M = 128, N = 128;   // points x outputs per block
  static constexpr int WM = 32, WN = 64;   // per warp
  static constexpr int FM = 2, FN = 4;     // 16 x 16 fragments per warp
  static constexpr int kWarpsM = M / WM;   // 4
};
static_assert(Tile<float>::M == Bf16Tile::M, "generation reuses the float tile's mapping");
static_assert(Bf16Tile::kWarpsM * (Bf16Tile::N / Bf16Tile::WN) * 32 == kThreads, "8 warps");

// Ring rows: >= 15 (an incomplete block) + 2L - 1 (the widest band), a multiple of 16.
SATCLIP_HD int ring_rows(int L) { return (2 * L + 14 + 15) / 16 * 16; }

SATCLIP_HD int round_up16(int x) { return (x + 15) / 16 * 16; }

// The leading dimensions the bf16 tiles allow (elements; multiples of 8 as WMMA requires for
// 16-bit types): 128 (no padding) and 136 (16 bytes of padding per row). The library is compiled
// for one, SATCLIP_WMMA_LD (CMake option, default 136: rows 16 bytes apart in the banks; 128 has an
// 8-way bank conflict per fragment load): a build with -DSATCLIP_WMMA_LD=128 is the other side of
// that comparison on a GPU. The simulations (tests/ops/sim/) run both.
constexpr int kWmmaLds[2] = {128, 136};
SATCLIP_HD constexpr bool valid_wmma_ld(int ld) { return ld == 128 || ld == 136; }
#ifndef SATCLIP_WMMA_LD
#define SATCLIP_WMMA_LD 136
#endif
constexpr int kWmmaLd = SATCLIP_WMMA_LD;
static_assert(valid_wmma_ld(kWmmaLd), "SATCLIP_WMMA_LD must be 128 or 136");

// Shared memory of a kernel whose A and B hold `rows` feature rows each, LD elements apart.
template <typename Bf>
SATCLIP_HD size_t bf16_smem_bytes(int rows, int ld = Bf16Tile::M) {
  return static_cast<size_t>(rows) * 2 * ld * sizeof(Bf) + static_cast<size_t>(kThreads / 32) * 256 * sizeof(float);
}

// Dynamic shared memory (bytes) of the fused first-layer kernels at degree L: elem_bytes 4
// (float SIMT), 8 (double SIMT) or 2 (the bf16 tensor-core kernel, leading dimension ld). The launchers size their
// launches with it and the CUDA glue compares it with the device's opt-in limit (first layers
// that do not fit take SH + cuBLAS): float L = 51-64 need more than the 99 KB of sm_86/89.
SATCLIP_HD size_t first_layer_smem_bytes(int L, int elem_bytes, int ld = Bf16Tile::M) {
  if (elem_bytes == 2) {
    return static_cast<size_t>(ring_rows(L)) * 2 * ld * 2 + static_cast<size_t>(kThreads / 32) * 256 * sizeof(float);
  }
  return elem_bytes == 8 ? smem_elems<double>(L) * sizeof(double) : smem_elems<float>(L) * sizeof(float);
}

// Ring rows [from, to) (mod R) to zero.
template <typename Bf>
SATCLIP_HD void zero_ring_rows(int tid, Bf* ring, int from, int to, int R, int ld) {
  constexpr int M = Bf16Tile::M;
  for (int idx = tid; idx < (to - from) * M; idx += kThreads) {
    ring[((from + idx / M) % R) * ld + idx % M] = Bf(0.0f);
  }
}

// Rows k0 .. k0 + rows - 1 of W^T (bf16, [K, H] row-major), columns n0 .. n0 + N - 1, into B;
// zero past K or H.
template <typename Bf>
SATCLIP_HD void load_b_rows(int tid, const Bf* wt, int64_t K, int H, int64_t k0, int rows, int n0, Bf* B, int ld) {
  constexpr int N = Bf16Tile::N;
  for (int idx = tid; idx < rows * N; idx += kThreads) {
    const int kk = idx / N, c = idx % N;
    const int64_t k = k0 + kk;
    B[kk * ld + c] = k < K && n0 + c < H ? wt[k * H + n0 + c] : Bf(0.0f);
  }
}

constexpr int kHiddenBlocks = 4;  // 16-feature blocks per step of the hidden-layer kernel

// 8 bf16 from p (16-byte aligned) into v (16-byte aligned).
template <typename Bf>
SATCLIP_HD void load8(const Bf* p, Bf* v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint4*>(v) = *reinterpret_cast<const uint4*>(p);
#else
  for (int i = 0; i < 8; ++i) v[i] = p[i];
#endif
}

// Blocks of 16 features k0 .. k0 + 16 * nblocks - 1 of rows row0 .. row0 + 127 of X (bf16,
// [n, K] row-major, K a multiple of 8) into A, transposed to A[kk][point]. Thread t reads 8
// consecutive features of point t % 128 (one 16-byte load) per block; a warp's stores to A go
// to 32 consecutive points, so they do not conflict.
template <typename Bf>
SATCLIP_HD void load_a_blocks(int tid, const Bf* x, int64_t n, int64_t K, int64_t row0, int64_t k0, int nblocks,
                              Bf* A, int ld) {
  constexpr int M = Bf16Tile::M;
  static_assert(kThreads == 2 * M, "two threads per point, 8 features each");
  const int p = tid % M, half = tid / M;
  const int64_t row = row0 + p;
  for (int blk = 0; blk < nblocks; ++blk) {
    const int kk = 16 * blk + 8 * half;
    const int64_t k = k0 + kk;
    alignas(16) Bf v[8];
    if (row < n && k + 8 <= K) {
      load8<Bf>(x + row * K + k, v);
    } else {
      for (int i = 0; i < 8; ++i) v[i] = row < n && k + i < K ? x[row * K + k + i] : Bf(0.0f);
    }
    for (int i = 0; i < 8; ++i) A[(kk + i) * ld + p] = v[i];
  }
}

// Warp-collective: nblocks 16-row blocks of the ring starting at ring row r0 (a multiple of 16)
// against the B rows of the batch, into the warp's 2 x 4 accumulators.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Mma, typename Bf>
SATCLIP_HD void mma_warp(int warp, const Bf* ring, int r0, int nblocks, int R, const Bf* B,
                         typename Mma::Acc (&acc)[Bf16Tile::FM][Bf16Tile::FN], int ld) {
  const int wm = warp % Bf16Tile::kWarpsM, wn = warp / Bf16Tile::kWarpsM;
  for (int blk = 0; blk < nblocks; ++blk) {
    const int r = (r0 + 16 * blk) % R;
    typename Mma::A fa[Bf16Tile::FM];
    typename Mma::B fb[Bf16Tile::FN];
#pragma unroll
    for (int i = 0; i < Bf16Tile::FM; ++i) Mma::load_a(fa[i], ring + r * ld + wm * Bf16Tile::WM + 16 * i, ld);
#pragma unroll
    for (int j = 0; j < Bf16Tile::FN; ++j) Mma::load_b(fb[j], B + 16 * blk * ld + wn * Bf16Tile::WN + 16 * j, ld);
#pragma unroll
    for (int i = 0; i < Bf16Tile::FM; ++i) {
#pragma unroll
      for (int j = 0; j < Bf16Tile::FN; ++j) Mma::mma(acc[i][j], fa[i], fb[j]);
    }
  }
}

// One lane's share of the epilogue of accumulator tile (i, j), after the warp stored it to its
// scratch (row-major 16 x 16): bias, w0, sine, bf16 store; rows >= n and columns >= H skipped.
template <typename Out>
SATCLIP_HD void epi_lane(int warp, int lane, int i, int j, const float* scratch, const float* bias, float w0,
                         int64_t n, int H, int64_t row0, int n0, Out* out) {
  const int wm = warp % Bf16Tile::kWarpsM, wn = warp / Bf16Tile::kWarpsM;
  const float* s = scratch + warp * 256;
  for (int e = lane; e < 256; e += 32) {
    const int64_t row = row0 + wm * Bf16Tile::WM + 16 * i + e / 16;
    const int col = n0 + wn * Bf16Tile::WN + 16 * j + e % 16;
    if (row < n && col < H) out[row * H + col] = Out(sin(w0 * (s[e] + bias[col])));
  }
}

}  // namespace fused
}  // namespace kernels
}  // namespace satclip

// sh_siren_tile.h -- the per-thread phases of the fused "SH -> first SIREN layer" kernel
// (sh_siren_layer.cu), torch-free and compilable by nvcc and by a host C++ compiler, so that
// tests/sim/ can run the very same phases on the CPU, thread by thread, without a GPU.
//
// What the block computes
//   out[i, c] = sin(w0 * (sum_k Y_k(lonlat_i) * W[c, k] + bias[c]))
//   for a tile of kTileM points (rows i) and kTileN first-layer outputs (columns c). The SH
//   features Y (layout and math of ../sh_math.h, feature k = l*l + l + m) are generated in
//   shared memory one degree band at a time (the 2l+1 features of degree l are contiguous in
//   k) and consumed at once by the GEMM, so the [N, L*L] feature matrix never reaches global
//   memory.
//
// Block of kThreads = 256 threads; per degree band l = 0..L-1:
//   1. gen_band:  thread t owns point t % kTileM and the orders m = t / kTileM + kGroups * j
//                 (j < J); it advances their column recurrences (registers, GenState) by one
//                 degree and writes Y_{l,+-m} into A[l +- m][point]      (A: [2L-1][kTileM])
//      load_band: the band's rows of W^T (given as wt = W^T, [L*L, H] row-major, so reads are
//                 coalesced along the outputs) into B[kk][c]           (B: [2L-1][kTileN])
//   2. barrier
//   3. mma_band:  thread t accumulates rows t / 16 + 16 i, columns t % 16 + 16 j (i, j < 4)
//                 over the band's 2l+1 features (A reads broadcast, B reads conflict-free)
//   4. barrier (the next band overwrites A and B)
// then epilogue: bias, w0, sine, store (rows >= N and columns >= H are skipped).
// Numerics: compute type = storage type; the recurrence, seeds and scaling are those of the
// unfused SH kernel (spherical_harmonics.cu), the sum runs over k in increasing order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../sh_math.h"

namespace satclip {
namespace kernels {
namespace fused {

constexpr int kThreads = 256;
constexpr int kTileM = 64;                  // points per block
constexpr int kTileN = 64;                  // first-layer outputs per block
constexpr int kGroups = kThreads / kTileM;  // threads sharing one point's orders
constexpr int kMaxL = 64;                   // larger degrees take the unfused path

// Orders per thread: m = g + kGroups * j covers 0..L-1 when J >= ceil(L / kGroups). The kernel
// is compiled for J = 4, 8, 10, 16 (L <= 16, 32, 40, 64; 40 is SatCLIP's large model).
SATCLIP_HD int orders_per_thread(int L) { return L <= 16 ? 4 : (L <= 32 ? 8 : (L <= 40 ? 10 : 16)); }

// Shared memory in elements: A then B, each (2L-1) rows.
SATCLIP_HD size_t smem_elems(int L) { return static_cast<size_t>(2 * L - 1) * (kTileM + kTileN); }

template <typename T>
SATCLIP_HD void sin_cos(T x, T* s, T* c) {
#if defined(__CUDA_ARCH__)
  sincos(x, s, c);
#else
  *s = sin(x);
  *c = cos(x);
#endif
}

// One thread's recurrence state for its J orders. p1 holds the scaled sectoral seed Q_mm
// until degree l = m is reached, then Q_{l-1,m}; p2 holds Q_{l-2,m}.
template <typename T, int J>
struct GenState {
  T z;
  T p1[J], p2[J], fc[J], fs[J];
};

template <typename T, int J>
SATCLIP_HD void gen_init(int tid, const T* lonlat, int64_t s0, int64_t s1, int64_t n, int64_t row0, int L,
                         const T* sect, GenState<T, J>& st) {
  constexpr T sqrt2 = static_cast<T>(1.4142135623730951);
  constexpr T deg = static_cast<T>(0.017453292519943295);
  const T down = ShScale<T>::down;
  const int64_t i = row0 + tid % kTileM;
  // Rows past N compute the features of (0, 0) and are never stored.
  const T lon_deg = i < n ? lonlat[i * s0] : T(0);
  const T lat_deg = i < n ? lonlat[i * s0 + s1] : T(0);
  T cl, sl, u;
  sh_angles<T>(lon_deg, lat_deg, cl, sl, st.z, u);
  const T lon = remainder(lon_deg, static_cast<T>(360)) * deg;
  const int g = tid / kTileM;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = g + kGroups * j;
    T p = sect[0];
    const int top = m < L ? m : 0;
    for (int k = 1; k <= top; ++k) p *= sect[k] * u;
    T s, c;
    sin_cos<T>(static_cast<T>(m) * lon, &s, &c);
    st.p1[j] = p;
    st.p2[j] = 0;
    st.fc[j] = m == 0 ? down : sqrt2 * down * c;
    st.fs[j] = sqrt2 * down * s;
  }
}

// Degree l of the thread's orders into A (band-local feature index l + m / l - m).
template <typename T, int J>
SATCLIP_HD void gen_band(int tid, int l, const T* a, const T* b, GenState<T, J>& st, T* A) {
  const int pt = tid % kTileM, g = tid / kTileM;
  const int64_t t0 = tri(l, 0);
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = g + kGroups * j;
    if (m <= l) {
      T p0 = st.p1[j];  // l == m: the seed
      if (m < l) {
        p0 = a[t0 + m] * st.z * st.p1[j] - b[t0 + m] * st.p2[j];
        st.p2[j] = st.p1[j];
      }
      st.p1[j] = p0;
      A[(l + m) * kTileM + pt] = p0 * st.fc[j];
      if (m > 0) A[(l - m) * kTileM + pt] = p0 * st.fs[j];
    }
  }
}

// Rows l*l .. l*l + 2l of W^T, columns n0 .. n0 + kTileN - 1 (zero past H), into B.
template <typename T>
SATCLIP_HD void load_band(int tid, int l, const T* wt, int H, int n0, T* B) {
  const int rows = 2 * l + 1;
  const int64_t k0 = static_cast<int64_t>(l) * l;
  for (int idx = tid; idx < rows * kTileN; idx += kThreads) {
    const int kk = idx / kTileN, c = idx % kTileN;
    B[kk * kTileN + c] = n0 + c < H ? wt[(k0 + kk) * H + n0 + c] : T(0);
  }
}

template <typename T>
SATCLIP_HD void mma_band(int tid, int l, const T* A, const T* B, T (&acc)[4][4]) {
  const int tr = tid / 16, tc = tid % 16;
  const int rows = 2 * l + 1;
  for (int kk = 0; kk < rows; ++kk) {
    T av[4], bv[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) av[i] = A[kk * kTileM + tr + 16 * i];
#pragma unroll
    for (int j = 0; j < 4; ++j) bv[j] = B[kk * kTileN + tc + 16 * j];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
  }
}

template <typename T>
SATCLIP_HD void epilogue(int tid, const T (&acc)[4][4], const T* bias, T w0, int64_t n, int H, int64_t row0,
                         int n0, T* out) {
  const int tr = tid / 16, tc = tid % 16;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = row0 + tr + 16 * i;
    if (row >= n) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int col = n0 + tc + 16 * j;
      if (col < H) out[row * H + col] = sin(w0 * (acc[i][j] + bias[col]));
    }
  }
}

}  // namespace fused
}  // namespace kernels
}  // namespace satclip

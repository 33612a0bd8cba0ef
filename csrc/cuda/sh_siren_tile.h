// sh_siren_tile.h -- the per-thread phases of the fused "SH -> first SIREN layer" kernel
// (sh_siren_layer.cu), torch-free and compilable by nvcc and by a host C++ compiler, so that
// tests/ops/sim/ can run the very same phases on the CPU, thread by thread, without a GPU.
//
// What the block computes
//   out[i, c] = sin(w0 * (sum_k Y_k(lonlat_i) * W[c, k] + bias[c]))
//   for a tile of Tile<T>::M points (rows i) and Tile<T>::N first-layer outputs (columns c).
//   The SH features Y (layout and math of ../common/sh_math.h, feature k = l*l + l + m) are generated
//   in shared memory one degree band at a time (the 2l+1 features of degree l are contiguous
//   in k) and consumed at once by the GEMM, so the [N, L*L] matrix never reaches global memory.
//
// Tiles (256 threads = 16 x 16 in both): float 128 x 128 points x outputs, 8 x 8 per thread;
// double 64 x 64, 4 x 4 per thread (its shared memory would not fit the larger tile).
// Per degree band l = 0..L-1:
//   1. gen_band:  thread t owns point t % M and the orders m = t / M + G * j (j < J,
//                 G = 256 / M threads per point); it advances their column recurrences by one
//                 degree (registers, GenState) and writes Y_{l,+-m} into A[l +- m][point]
//      load_band: the band's rows of W^T (given as wt = W^T, [L*L, H] row-major, so reads are
//                 coalesced along the outputs) into B[kk][c], zero past H
//      (A: [2L-1][M], B: [2L-1][N], both in shared memory, A first)
//   2. barrier
//   3. mma_band:  thread (tr, tc) = (t / 16, t % 16) owns rows R*tr + i and M/2 + R*tr + i
//                 (R = TM/2, i < R) and the same pattern of columns with tc; per feature it
//                 reads R contiguous values of A and of B twice each (16-byte vector loads:
//                 A reads are broadcasts, B reads conflict-free) and does TM * TN FMAs
//   4. barrier (the next band overwrites A and B)
// then epilogue: bias, w0, sine, store (rows >= N and columns >= H are skipped).
// Numerics: compute type = storage type; the recurrence, seeds and scaling are those of the
// unfused SH kernel (spherical_harmonics.cu), the sum runs over k in increasing order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/sh_math.h"

namespace satclip {
namespace kernels {
namespace fused {

constexpr int kThreads = 256;
constexpr int kMaxL = 64;  // larger degrees take the unfused path

template <typename T>
struct Tile;
template <>
struct Tile<float> {
  static constexpr int M = 128, N = 128, TM = 8, TN = 8;
};
template <>
struct Tile<double> {
  static constexpr int M = 64, N = 64, TM = 4, TN = 4;
};

// Threads sharing one point's orders during generation.
template <typename T>
SATCLIP_HD constexpr int groups() {
  return kThreads / Tile<T>::M;
}

// Orders per thread: m = g + G * j covers 0..L-1 when J >= ceil(L / G). Compiled J values:
// float (G = 2): 8, 16, 20, 32 for L <= 16, 32, 40, 64; double (G = 4): 4, 8, 10, 16.
// 40 has its own size because it is SatCLIP's large model.
template <typename T>
SATCLIP_HD int orders_per_thread(int L) {
  const int bucket = L <= 16 ? 16 : (L <= 32 ? 32 : (L <= 40 ? 40 : 64));
  return bucket / groups<T>();
}

// Calls f.template operator()<J>() with the J that orders_per_thread<T>(L) names, among the
// values compiled for T; returns `none` when L is out of range.
template <typename T, typename F, typename R>
R with_orders(int L, F&& f, R none) {
  if (L < 1 || L > kMaxL) return none;
  const int J = orders_per_thread<T>(L);
  constexpr int G = groups<T>();
  if (J == 16 / G) return f.template operator()<16 / G>();
  if (J == 32 / G) return f.template operator()<32 / G>();
  if (J == 40 / G) return f.template operator()<40 / G>();
  return f.template operator()<64 / G>();
}

// Shared memory in elements: A then B, each 2L-1 rows.
template <typename T>
SATCLIP_HD size_t smem_elems(int L) {
  return static_cast<size_t>(2 * L - 1) * (Tile<T>::M + Tile<T>::N);
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
  constexpr int M = Tile<T>::M, G = groups<T>();
  const int64_t i = row0 + tid % M;
  // Rows past N compute the features of (0, 0) and are never stored.
  const T lon_deg = i < n ? lonlat[i * s0] : T(0);
  const T lat_deg = i < n ? lonlat[i * s0 + s1] : T(0);
  T cl, sl, u;
  sh_angles<T>(lon_deg, lat_deg, cl, sl, st.z, u);
  const T lon = remainder(lon_deg, static_cast<T>(360)) * deg;
  const int g = tid / M;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = g + G * j;
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

// Degree l of the thread's orders into A: feature l +- m of the band goes to row
// (base + l +- m) mod R of A (R = 0: no wrap), rows ld elements apart (default M), stored as
// Out (T, or bf16 for the tensor-core kernel, rounded to nearest even).
template <typename T, int J, typename Out = T>
SATCLIP_HD void gen_band(int tid, int l, const T* a, const T* b, GenState<T, J>& st, Out* A, int base = 0,
                         int R = 0, int ld = Tile<T>::M) {
  constexpr int M = Tile<T>::M, G = groups<T>();
  const int pt = tid % M, g = tid / M;
  const int64_t t0 = tri(l, 0);
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = g + G * j;
    if (m <= l) {
      T p0 = st.p1[j];  // l == m: the seed
      if (m < l) {
        p0 = a[t0 + m] * st.z * st.p1[j] - b[t0 + m] * st.p2[j];
        st.p2[j] = st.p1[j];
      }
      st.p1[j] = p0;
      const int rp = base + l + m, rn = base + l - m;
      A[(R > 0 ? rp % R : rp) * ld + pt] = static_cast<Out>(p0 * st.fc[j]);
      if (m > 0) A[(R > 0 ? rn % R : rn) * ld + pt] = static_cast<Out>(p0 * st.fs[j]);
    }
  }
}

// Rows l*l .. l*l + 2l of W^T, columns n0 .. n0 + N - 1 (zero past H), into B.
template <typename T>
SATCLIP_HD void load_band(int tid, int l, const T* wt, int H, int n0, T* B) {
  constexpr int N = Tile<T>::N;
  const int rows = 2 * l + 1;
  const int64_t k0 = static_cast<int64_t>(l) * l;
  for (int idx = tid; idx < rows * N; idx += kThreads) {
    const int kk = idx / N, c = idx % N;
    B[kk * N + c] = n0 + c < H ? wt[(k0 + kk) * H + n0 + c] : T(0);
  }
}

// R = 4 floats or 2 doubles (16 bytes) from shared memory; p is 16-byte aligned.
template <typename T, int R>
SATCLIP_HD void load16(const T* p, T (&v)[R]) {
  static_assert(R * sizeof(T) == 16, "16-byte vector loads");
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else {
    const double2 q = *reinterpret_cast<const double2*>(p);
    v[0] = q.x, v[1] = q.y;
  }
#else
  for (int i = 0; i < R; ++i) v[i] = p[i];
#endif
}

// Row (or column) of thread index `t` (tr or tc) for its i-th value, i < TM (or TN).
template <int Half, int R>
SATCLIP_HD int owned(int t, int i) {
  return (i < R ? 0 : Half) + R * t + (i % R);
}

template <typename T>
SATCLIP_HD void mma_band(int tid, int l, const T* A, const T* B, T (&acc)[Tile<T>::TM][Tile<T>::TN]) {
  constexpr int M = Tile<T>::M, N = Tile<T>::N, TM = Tile<T>::TM, TN = Tile<T>::TN;
  constexpr int RM = TM / 2, RN = TN / 2;
  const int tr = tid / 16, tc = tid % 16;
  const int rows = 2 * l + 1;
  for (int kk = 0; kk < rows; ++kk) {
    T a0[RM], a1[RM], b0[RN], b1[RN];
    load16<T, RM>(A + kk * M + RM * tr, a0);
    load16<T, RM>(A + kk * M + M / 2 + RM * tr, a1);
    load16<T, RN>(B + kk * N + RN * tc, b0);
    load16<T, RN>(B + kk * N + N / 2 + RN * tc, b1);
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const T av = i < RM ? a0[i % RM] : a1[i % RM];
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] += av * (j < RN ? b0[j % RN] : b1[j % RN]);
    }
  }
}

template <typename T>
SATCLIP_HD void epilogue(int tid, const T (&acc)[Tile<T>::TM][Tile<T>::TN], const T* bias, T w0, int64_t n, int H,
                         int64_t row0, int n0, T* out) {
  constexpr int M = Tile<T>::M, N = Tile<T>::N, TM = Tile<T>::TM, TN = Tile<T>::TN;
  const int tr = tid / 16, tc = tid % 16;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t row = row0 + owned<M / 2, TM / 2>(tr, i);
    if (row >= n) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int col = n0 + owned<N / 2, TN / 2>(tc, j);
      if (col < H) out[row * H + col] = sin(w0 * (acc[i][j] + bias[col]));
    }
  }
}

}  // namespace fused
}  // namespace kernels
}  // namespace satclip

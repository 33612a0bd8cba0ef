// sh_siren_sim.cpp -- runs the fused SH -> first-layer kernel's phases (csrc/cuda/sh_siren_tile.h)
// on the CPU, block by block and thread by thread, with the kernel's barriers as the boundaries
// between loops over threads. Built and called by tests/test_sh_siren_sim.py (ctypes), so the
// kernel's indexing, shared-memory layout and edge handling are tested on machines without a GPU.
// Mirrors sh_siren_kernel in csrc/cuda/sh_siren_layer.cu: keep the two in step.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cuda/sh_siren_tile.h"

namespace {

using namespace satclip::kernels;
using namespace satclip::kernels::fused;

constexpr size_t kGuard = 4096;

template <typename T, int J>
int run(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const T* wt, const T* bias, int H, T w0,
         T* out) {
  std::vector<T> a(L * (L + 1) / 2), b(a.size()), sect(L);
  sh_coefficients<T>(L, a.data(), b.data(), sect.data());
  // Shared memory plus a guard zone; both poisoned with NaN so that a read of anything the
  // band did not write, or a write past the end, shows (NaN in the output / a changed guard).
  const T nan = std::numeric_limits<T>::quiet_NaN();
  constexpr int M = Tile<T>::M, N = Tile<T>::N;
  std::vector<T> smem(smem_elems<T>(L) + kGuard, nan);
  T* A = smem.data();
  T* B = A + static_cast<size_t>(2 * L - 1) * M;
  struct Acc {
    T v[Tile<T>::TM][Tile<T>::TN];
  };
  std::vector<GenState<T, J>> st(kThreads);  // each thread's registers
  std::vector<Acc> acc(kThreads);
  for (int64_t bx = 0; bx * M < n; ++bx) {
    for (int by = 0; by * N < H; ++by) {
      const int64_t row0 = bx * M;
      const int n0 = by * N;
      for (int t = 0; t < kThreads; ++t) gen_init<T, J>(t, lonlat, s0, s1, n, row0, L, sect.data(), st[t]);
      std::fill(acc.begin(), acc.end(), Acc{});
      for (int l = 0; l < L; ++l) {
        std::fill(smem.begin(), smem.end() - kGuard, nan);  // what the previous band left is stale
        for (int t = 0; t < kThreads; ++t) {
          gen_band<T, J>(t, l, a.data(), b.data(), st[t], A);
          load_band<T>(t, l, wt, H, n0, B);
        }
        // __syncthreads()
        for (int t = 0; t < kThreads; ++t) mma_band<T>(t, l, A, B, acc[t].v);
        // __syncthreads()
      }
      for (int t = 0; t < kThreads; ++t)
        epilogue<T>(t, acc[t].v, bias, w0, n, H, row0, n0, out);
    }
  }
  for (size_t i = smem.size() - kGuard; i < smem.size(); ++i) {
    if (!std::isnan(smem[i])) return 2;
  }
  return 0;
}

template <typename T>
int dispatch(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const T* wt, const T* bias, int H, T w0,
             T* out) {
  return with_orders<T>(L, [&]<int J>() { return run<T, J>(lonlat, s0, s1, n, L, wt, bias, H, w0, out); }, 1);
}

}  // namespace

extern "C" {
int sh_siren_sim_f32(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* wt,
                     const float* bias, int H, float w0, float* out) {
  return dispatch<float>(lonlat, s0, s1, n, L, wt, bias, H, w0, out);
}
int sh_siren_sim_f64(const double* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const double* wt,
                     const double* bias, int H, double w0, double* out) {
  return dispatch<double>(lonlat, s0, s1, n, L, wt, bias, H, w0, out);
}
}

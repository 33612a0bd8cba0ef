// sh_siren_sim.cpp -- runs the fused SH -> first-layer kernels' phases (csrc/cuda/sh_siren_tile.h,
// bf16_tile.h) on the CPU, block by block and thread by thread (warp by warp for the
// warp-collective WMMA steps), with the kernel's barriers as the boundaries between loops over
// threads. Built and called by tests/ops/test_sh_siren_sim.py (ctypes), so the kernels' indexing,
// shared-memory layout and edge handling are tested on machines without a GPU.
// Mirrors sh_siren_kernel and sh_siren_bf16_kernel in csrc/cuda/sh_siren_layer.cu and
// siren_bf16_kernel in csrc/cuda/siren_bf16.cu: keep them in step.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <cstdint>
#include <cstring>

#include "cuda/bf16_tile.h"
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
  // sized as the launcher sizes the launch (first_layer_smem_bytes), so a write past it shows
  std::vector<T> smem(first_layer_smem_bytes(L, sizeof(T)) / sizeof(T) + kGuard, nan);
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

// bf16 stored as its 16 bits, converted like __float2bfloat16_rn (nearest even; NaN stays NaN).
struct SimBf16 {
  uint16_t bits = 0;
  SimBf16() = default;
  explicit SimBf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (std::isnan(f)) {
      bits = 0x7fc0;
    } else {
      bits = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
  }
  explicit operator float() const {
    const uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// The WMMA interface of mma_warp with whole 16 x 16 tiles: A col-major, B row-major, float sums.
struct HostMma {
  struct Tile16 {
    float v[16][16];
  };
  using A = Tile16;
  using B = Tile16;
  using Acc = Tile16;
  static void load_a(A& f, const SimBf16* p, int ldm) {
    for (int i = 0; i < 16; ++i)
      for (int k = 0; k < 16; ++k) f.v[i][k] = static_cast<float>(p[i + k * ldm]);
  }
  static void load_b(B& f, const SimBf16* p, int ldm) {
    for (int k = 0; k < 16; ++k)
      for (int j = 0; j < 16; ++j) f.v[k][j] = static_cast<float>(p[k * ldm + j]);
  }
  static void mma(Acc& c, const A& a, const B& b) {
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j)
        for (int k = 0; k < 16; ++k) c.v[i][j] += a.v[i][k] * b.v[k][j];
  }
  static void store(float* p, const Acc& c, int ldm) {
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) p[i * ldm + j] = c.v[i][j];
  }
};

struct WarpAcc {
  HostMma::Acc f[Bf16Tile::FM][Bf16Tile::FN];
};

std::vector<SimBf16> to_bf16(const float* v, int64_t count) {
  std::vector<SimBf16> out(count);
  for (int64_t i = 0; i < count; ++i) out[i] = SimBf16(v[i]);
  return out;
}

// The warps' epilogues: each accumulator tile through the warp's scratch, then its 32 lanes.
void epilogue_warps(std::vector<WarpAcc>& acc, std::vector<float>& scratch, const float* bias, float w0, int64_t n,
                    int H, int64_t row0, int n0, SimBf16* out) {
  for (int i = 0; i < Bf16Tile::FM; ++i) {
    for (int j = 0; j < Bf16Tile::FN; ++j) {
      for (int w = 0; w < static_cast<int>(acc.size()); ++w) {
        HostMma::store(scratch.data() + w * 256, acc[w].f[i][j], 16);
        for (int lane = 0; lane < 32; ++lane) epi_lane<SimBf16>(w, lane, i, j, scratch.data(), bias, w0, n, H, row0, n0, out);
      }
    }
  }
}

// 2 if a write went past A or B (their NaN guard zone changed), else 0 with out copied to out_f.
int finish(const std::vector<SimBf16>& A, const std::vector<SimBf16>& B, const std::vector<SimBf16>& out,
           float* out_f) {
  const uint16_t nan_bits = SimBf16(std::numeric_limits<float>::quiet_NaN()).bits;
  for (const auto* v : {&A, &B}) {
    for (size_t i = v->size() - kGuard; i < v->size(); ++i) {
      if ((*v)[i].bits != nan_bits) return 2;
    }
  }
  for (size_t i = 0; i < out.size(); ++i) out_f[i] = static_cast<float>(out[i]);
  return 0;
}

// wt: W^T already rounded to bf16 values (float), [L*L, H]; out: the bf16 results as float.
template <int J>
int run_bf16(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* wt_f, const float* bias,
             int H, float w0, float* out_f, int ld) {
  if (!valid_wmma_ld(ld)) return 1;
  constexpr int M = Bf16Tile::M, N = Bf16Tile::N, kWarps = kThreads / 32;
  std::vector<float> a(L * (L + 1) / 2), b(a.size()), sect(L);
  sh_coefficients<float>(L, a.data(), b.data(), sect.data());
  const int64_t K = static_cast<int64_t>(L) * L;
  const std::vector<SimBf16> wt = to_bf16(wt_f, K * H);
  std::vector<SimBf16> out(n * H, SimBf16(std::numeric_limits<float>::quiet_NaN()));
  const int R = ring_rows(L);
  const SimBf16 nan16(std::numeric_limits<float>::quiet_NaN());
  // sized as the launcher sizes the launch: A and B of R rows, ld apart (the padding stays NaN,
  // so a fragment that read it would show)
  if (first_layer_smem_bytes(L, 2, ld) != static_cast<size_t>(R) * 2 * ld * 2 + kWarps * 256 * sizeof(float)) return 3;
  std::vector<SimBf16> ring(static_cast<size_t>(R) * ld + kGuard, nan16), B(static_cast<size_t>(R) * ld + kGuard, nan16);
  std::vector<float> scratch(kWarps * 256);
  std::vector<GenState<float, J>> st(kThreads);
  std::vector<WarpAcc> acc(kWarps);  // each warp's accumulator fragments
  for (int64_t bx = 0; bx * M < n; ++bx) {
    for (int by = 0; by * N < H; ++by) {
      const int64_t row0 = bx * M;
      const int n0 = by * N;
      std::fill(ring.begin(), ring.end() - kGuard, nan16);  // nothing carries over between blocks
      for (int t = 0; t < kThreads; ++t) gen_init<float, J>(t, lonlat, s0, s1, n, row0, L, sect.data(), st[t]);
      std::fill(acc.begin(), acc.end(), WarpAcc{});
      int produced = 0, consumed = 0;
      for (int l = 0; l < L; ++l) {
        for (int t = 0; t < kThreads; ++t)
          gen_band<float, J, SimBf16>(t, l, a.data(), b.data(), st[t], ring.data(), produced % R, R, ld);
        produced += 2 * l + 1;
        int ready = produced;
        if (l == L - 1) {
          ready = round_up16(produced);
          for (int t = 0; t < kThreads; ++t) zero_ring_rows<SimBf16>(t, ring.data(), produced, ready, R, ld);
        }
        const int nb = (ready - consumed) / 16;
        if (nb > 0) {
          std::fill(B.begin(), B.end() - kGuard, nan16);
          for (int t = 0; t < kThreads; ++t)
            load_b_rows<SimBf16>(t, wt.data(), K, H, consumed, 16 * nb, n0, B.data(), ld);
          // __syncthreads()
          for (int w = 0; w < kWarps; ++w)
            mma_warp<HostMma, SimBf16>(w, ring.data(), consumed % R, nb, R, B.data(), acc[w].f, ld);
          // __syncthreads(): the consumed rows are stale from here on
          for (int r = consumed; r < consumed + 16 * nb; ++r)
            for (int p = 0; p < M; ++p) ring[(r % R) * ld + p] = nan16;
          consumed += 16 * nb;
        }
      }
      epilogue_warps(acc, scratch, bias, w0, n, H, row0, n0, out.data());
    }
  }
  return finish(ring, B, out, out_f);
}

// x: [n, K] bf16 values as float; wt: W^T rounded to bf16 values, [K, H]; out as float.
int run_siren_bf16(const float* x_f, int64_t n, int64_t K, const float* wt_f, const float* bias, int H, float w0,
                   float* out_f, int ld) {
  if (K % 8 != 0 || !valid_wmma_ld(ld)) return 1;
  constexpr int M = Bf16Tile::M, N = Bf16Tile::N, R = 16 * kHiddenBlocks, kWarps = kThreads / 32;
  const SimBf16 nan16(std::numeric_limits<float>::quiet_NaN());
  // NaN after the last row: a read past the end of x (a 16-byte load across K) shows in the output.
  std::vector<SimBf16> x = to_bf16(x_f, n * K);
  x.resize(n * K + 64, nan16);
  const std::vector<SimBf16> wt = to_bf16(wt_f, K * H);
  if (bf16_smem_bytes<SimBf16>(R, ld) != static_cast<size_t>(R) * 2 * ld * 2 + kWarps * 256 * sizeof(float)) return 3;
  std::vector<SimBf16> out(n * H, nan16), A(R * ld + kGuard, nan16), B(R * ld + kGuard, nan16);
  std::vector<float> scratch(kWarps * 256);
  std::vector<WarpAcc> acc(kWarps);
  for (int64_t bx = 0; bx * M < n; ++bx) {
    for (int by = 0; by * N < H; ++by) {
      const int64_t row0 = bx * M;
      const int n0 = by * N;
      std::fill(acc.begin(), acc.end(), WarpAcc{});
      for (int64_t k0 = 0; k0 < K; k0 += R) {
        const int nb = static_cast<int>(std::min<int64_t>(kHiddenBlocks, (K - k0 + 15) / 16));
        std::fill(A.begin(), A.end() - kGuard, nan16);  // a step reads only what it loaded
        std::fill(B.begin(), B.end() - kGuard, nan16);
        for (int t = 0; t < kThreads; ++t) {
          load_a_blocks<SimBf16>(t, x.data(), n, K, row0, k0, nb, A.data(), ld);
          load_b_rows<SimBf16>(t, wt.data(), K, H, k0, 16 * nb, n0, B.data(), ld);
        }
        // __syncthreads()
        for (int w = 0; w < kWarps; ++w) mma_warp<HostMma, SimBf16>(w, A.data(), 0, nb, R, B.data(), acc[w].f, ld);
        // __syncthreads()
      }
      epilogue_warps(acc, scratch, bias, w0, n, H, row0, n0, out.data());
    }
  }
  return finish(A, B, out, out_f);
}

}  // namespace

extern "C" {
// The launchers' shared-memory size (bf16_tile.h), for the device-limit test.
size_t first_layer_smem_bytes_sim(int L, int elem_bytes) { return first_layer_smem_bytes(L, elem_bytes); }

int siren_bf16_sim(const float* x, int64_t n, int64_t K, const float* wt, const float* bias, int H, float w0,
                   float* out, int ld) {
  return run_siren_bf16(x, n, K, wt, bias, H, w0, out, ld);
}

int sh_siren_bf16_sim(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* wt, const float* bias,
                      int H, float w0, float* out, int ld) {
  return with_orders<float>(
      L, [&]<int J>() { return run_bf16<J>(lonlat, s0, s1, n, L, wt, bias, H, w0, out, ld); }, 1);
}

int sh_siren_sim_f32(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* wt,
                     const float* bias, int H, float w0, float* out) {
  return dispatch<float>(lonlat, s0, s1, n, L, wt, bias, H, w0, out);
}
int sh_siren_sim_f64(const double* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const double* wt,
                     const double* bias, int H, double w0, double* out) {
  return dispatch<double>(lonlat, s0, s1, n, L, wt, bias, H, w0, out);
}
}

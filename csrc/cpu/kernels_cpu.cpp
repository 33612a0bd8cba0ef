// kernels_cpu.cpp -- CPU kernels for spherical harmonics and the SIREN epilogues.
//
// Compiled twice (CMake object libraries): SATCLIP_CPU_ISA=base with the default x86-64 flags
// and SATCLIP_CPU_ISA=avx2 with -mavx2 -mfma. No torch headers: the glue in ops_cpu.cpp owns
// allocation, checks and dispatch.
//
// Spherical harmonics: OpenMP over blocks of kLanes points; inside a block the shared math
// (sh_math.h) runs with the lane loop innermost so that it vectorises across points. The
// backward builds one point's Legendre table (L*(L+1)/2 values, thread-local) and reads
// grad_out once; it never forms the [N, 2, L*L] Jacobian.
#include "kernels_cpu.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "../common/quantize_int8.h"
#include "../common/sh_math.h"
#include "fast_sincos.h"

#ifndef SATCLIP_CPU_ISA
#error "SATCLIP_CPU_ISA must be defined (base, avx2 or avx512)"
#endif

namespace satclip {
namespace kernels {
namespace SATCLIP_CPU_ISA {

namespace {

template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  static constexpr int value = 16;
};
template <>
struct Lanes<double> {
  static constexpr int value = 8;
};

// Flush-to-zero + denormals-are-zero for the calling thread while a kernel runs. Results
// below the smallest normal number (1.2e-38 in float32, 2.2e-308 in float64) become 0, an
// absolute change far below every tolerance; without it, the tiny high-order SH values near
// the poles run through the CPU's slow denormal path, in this kernel and in every GEMM that
// consumes its output (measured: a 7x slower L = 40 float32 encoder).
struct DenormalsAreZero {
#if defined(__SSE2__)
  unsigned int saved;
  DenormalsAreZero() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
  ~DenormalsAreZero() { _mm_setcsr(saved); }
#endif
};

template <typename T>
struct Coefficients {
  std::vector<T> a, b, sect;
  explicit Coefficients(int L) : a(static_cast<size_t>(L) * (L + 1) / 2), b(a.size()), sect(L) {
    sh_coefficients<T>(L, a.data(), b.data(), sect.data());
  }
};

}  // namespace

// scale (nullable, [K]): each feature times its factor, applied to a block of V rows right after
// they are written (still in cache), so a convention costs no second pass over the output.
template <typename T>
inline void scale_rows(T* rows, int64_t count, int64_t K, const T* scale) {
  if (scale == nullptr) return;
  for (int64_t r = 0; r < count; ++r) {
    T* row = rows + r * K;
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) row[k] *= scale[k];
  }
}

template <typename T>
void sh_fwd(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, T* out, const T* scale, int threads) {
  if (n == 0 || L == 0) return;
  constexpr int V = Lanes<T>::value;
  const Coefficients<T> co(L);
  const int64_t K = static_cast<int64_t>(L) * L;
  const int64_t blocks = (n + V - 1) / V;
#pragma omp parallel num_threads(threads)
  {
  DenormalsAreZero daz;
#pragma omp for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t i0 = blk * V;
    if (i0 + V <= n) {
      T lon[V], lat[V];
      for (int j = 0; j < V; ++j) {
        lon[j] = lonlat[(i0 + j) * s0];
        lat[j] = lonlat[(i0 + j) * s0 + s1];
      }
      sh_forward_lanes<T, V, T>(lon, lat, L, co.a.data(), co.b.data(), co.sect.data(), out + i0 * K,
                                K);
      scale_rows(out + i0 * K, V, K, scale);
    } else {
      for (int64_t i = i0; i < n; ++i) {
        const T lon = lonlat[i * s0], lat = lonlat[i * s0 + s1];
        sh_forward_lanes<T, 1, T>(&lon, &lat, L, co.a.data(), co.b.data(), co.sect.data(),
                                  out + i * K, K);
        scale_rows(out + i * K, 1, K, scale);
      }
    }
  }
  }
}

template <typename T>
void sh_bwd(const T* grad, int64_t g0, int64_t g1, const T* lonlat, int64_t s0, int64_t s1,
            int64_t n, int L, T* out, int threads) {
  if (n == 0) return;
  if (L == 0) {
    std::fill(out, out + 2 * n, T(0));
    return;
  }
  const Coefficients<T> co(L);
#pragma omp parallel num_threads(threads)
  {
    DenormalsAreZero daz;
    std::vector<T> q(co.a.size()), c(L), s(L);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      T cl, sl, z, u;
      sh_angles<T>(lonlat[i * s0], lonlat[i * s0 + s1], cl, sl, z, u);
      sh_legendre_table<T>(cl, sl, z, u, L, co.a.data(), co.b.data(), co.sect.data(), q.data(),
                           c.data(), s.data());
      sh_backward_from_table<T, T>(grad + i * g0, g1, L, q.data(), c.data(), s.data(), out[2 * i],
                                   out[2 * i + 1]);
    }
  }
}

namespace {
constexpr int64_t kEpilogueChunk = 4096;

// One chunk of the epilogue. A first pass counts arguments outside the fast range (or not
// finite); normally there are none and the second pass is the branch-free vector loop.
// Otherwise the chunk goes through libm, element by element.
template <typename T, bool kMask, bool kCos>
void epilogue_chunk(T* z, const T* mask, T w0, int64_t lo, int64_t hi, T* cos_out) {
  const T lim = std::is_same_v<T, float> ? static_cast<T>(kFastSinCosMaxF) : static_cast<T>(kFastSinCosMax);
  int64_t outside = 0;
#pragma omp simd reduction(+ : outside)
  for (int64_t i = lo; i < hi; ++i) {
    const T a = w0 * z[i] * (kMask ? mask[i] : T(1));
    outside += (std::abs(a) <= lim) ? 0 : 1;  // NaN counts as outside
  }
  if (outside == 0) {
    // Without a cos output the cosine still goes to a scratch row: GCC does not vectorise the
    // loop once half of fast_sincos is dead code (measured: 2x slower epilogue).
    T scratch[kCos ? 1 : kEpilogueChunk];
    T* cdst = kCos ? cos_out + lo : scratch;
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const T a = w0 * z[i] * (kMask ? mask[i] : T(1));
      T sv, cv;
      fast_sincos(a, sv, cv);
      z[i] = sv;
      cdst[i - lo] = cv;
    }
  } else {
    for (int64_t i = lo; i < hi; ++i) {
      const T a = w0 * z[i] * (kMask ? mask[i] : T(1));
      z[i] = std::sin(a);
      if (kCos) cos_out[i] = std::cos(a);
    }
  }
}
}  // namespace

template <typename T>
void siren_epilogue(T* z, const T* mask, T w0, int64_t numel, T* cos_out, int threads) {
  const int64_t chunks = (numel + kEpilogueChunk - 1) / kEpilogueChunk;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t lo = ch * kEpilogueChunk, hi = std::min(numel, lo + kEpilogueChunk);
    if (mask) {
      if (cos_out) epilogue_chunk<T, true, true>(z, mask, w0, lo, hi, cos_out);
      else epilogue_chunk<T, true, false>(z, mask, w0, lo, hi, cos_out);
    } else {
      if (cos_out) epilogue_chunk<T, false, true>(z, mask, w0, lo, hi, cos_out);
      else epilogue_chunk<T, false, false>(z, mask, w0, lo, hi, cos_out);
    }
  }
}

template <typename T>
void siren_grad_epilogue(const T* gy, const T* cos, const T* mask, T w0, int64_t numel, T* gz,
                         int threads) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
  for (int64_t i = 0; i < numel; ++i) gz[i] = gy[i] * w0 * cos[i] * (mask ? mask[i] : T(1));
}

// One row at a time, both passes while the row is in L1 (1 KB at D = 256): the maximum of |e|
// (and whether a NaN is there), then the codes; the memory is read once. OpenMP over rows with
// the given thread count: a writer thread of the embedding pipeline asks for 1 (the writers
// are the parallelism), a direct call for torch's count.
void quantize_int8(const float* emb, int64_t n, int64_t d, int64_t ld, int8_t* codes, float* scale, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && n * d > (int64_t(1) << 16))
  for (int64_t r = 0; r < n; ++r) {
    const float* x = emb + r * ld;
    float m = 0.0f;
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int64_t j = 0; j < d; ++j) {
      const float a = std::fabs(x[j]);
      m = a > m ? a : m;
      nan |= static_cast<int>(a != a);
    }
    const float s = int8_scale(nan ? std::numeric_limits<float>::quiet_NaN() : m);
    scale[r] = s;
    int8_t* c = codes + r * d;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) c[j] = int8_code(x[j], s);
  }
}

#define SATCLIP_INSTANTIATE(T)                                                                     \
  template void sh_fwd<T>(const T*, int64_t, int64_t, int64_t, int, T*, const T*, int);            \
  template void sh_bwd<T>(const T*, int64_t, int64_t, const T*, int64_t, int64_t, int64_t, int, T*, \
                          int);                                                                    \
  template void siren_epilogue<T>(T*, const T*, T, int64_t, T*, int);                              \
  template void siren_grad_epilogue<T>(const T*, const T*, const T*, T, int64_t, T*, int);
SATCLIP_INSTANTIATE(float)
SATCLIP_INSTANTIATE(double)
#undef SATCLIP_INSTANTIATE

}  // namespace SATCLIP_CPU_ISA
}  // namespace kernels
}  // namespace satclip

// sh_warp.h -- the per-lane steps of the warp-per-point SH kernels (spherical_harmonics.cu),
// torch-free and compilable by nvcc and a host compiler: the kernels run them on 32 lanes with
// warp shuffles, tests/ops/sim/ runs them lane by lane with the shuffles emulated (the Warp policy
// below), so the lane/chunk/shuffle logic is tested without a GPU.
//
// Layout: one warp per point; lane `lane` owns the orders m = lane + 32 j (j < J) and runs their
// column recurrences (sh_math.h) one degree at a time. At degree l the 2l+1 features of that
// degree (contiguous in the point's row, feature l*l + l +- m) are written (forward) or read
// (backward) by the warp together, so global accesses are coalesced.
// Backward: Q_{l,m+-1}, needed by dQ_lm/dlat, live in the neighbouring lanes (across a chunk
// boundary: lane 0 / lane 31 of the next / previous chunk); the Warp policy fetches them.
#pragma once

#include "../common/sh_math.h"

namespace satclip {
namespace kernels {
namespace warp {

// One lane's state for one point. Forward: cm/sm hold the feature factors (scale removed,
// sqrt(2) on m > 0) after lane_forward_factors.
template <typename T, int J>
struct Lane {
  T z;
  T seed[J], cm[J], sm[J], p1[J], p2[J], q[J];
};

// Seeds Q_mm (scaled) and cos/sin(m lon) of the lane's orders; recurrences reset.
template <typename T, int J>
SATCLIP_HD void lane_init(int lane, T lon_deg, T lat_deg, int L, const T* sect, Lane<T, J>& s) {
  T cl, sl, u;
  sh_angles<T>(lon_deg, lat_deg, cl, sl, s.z, u);
  constexpr T deg = static_cast<T>(0.017453292519943295);
  const T lon = remainder(lon_deg, static_cast<T>(360)) * deg;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = lane + 32 * j;
    T p = sect[0];
    const int top = m < L ? m : 0;
    for (int k = 1; k <= top; ++k) p *= sect[k] * u;
    s.seed[j] = p;
    sin_cos<T>(static_cast<T>(m) * lon, &s.sm[j], &s.cm[j]);
    s.p1[j] = s.p2[j] = s.q[j] = 0;
  }
}

template <typename T, int J>
SATCLIP_HD void lane_forward_factors(int lane, Lane<T, J>& s) {
  constexpr T sqrt2 = static_cast<T>(1.4142135623730951);
  const T down = ShScale<T>::down;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    s.cm[j] = lane + 32 * j == 0 ? down : sqrt2 * down * s.cm[j];
    s.sm[j] = sqrt2 * down * s.sm[j];
  }
}

// Forward, degree l: the lane's features of that degree into the point's row.
template <typename T, int J, typename Out>
SATCLIP_HD void lane_forward_degree(int lane, int l, const T* a, const T* b, Lane<T, J>& s, Out* row) {
  const int64_t k0 = static_cast<int64_t>(l) * l + l;
  const int64_t t0 = tri(l, 0);
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = lane + 32 * j;
    if (m <= l) {
      const T p0 = m == l ? s.seed[j] : a[t0 + m] * s.z * s.p1[j] - b[t0 + m] * s.p2[j];
      s.p2[j] = s.p1[j];
      s.p1[j] = p0;
      row[k0 + m] = static_cast<Out>(p0 * s.cm[j]);
      if (m > 0) row[k0 - m] = static_cast<Out>(p0 * s.sm[j]);
    }
  }
}

// Backward, degree l, step 1: Q_lm of the lane's orders into q (unscaled, so the sums of step 2
// cannot overflow whatever grad holds; 0 for m > l).
template <typename T, int J>
SATCLIP_HD void lane_backward_advance(int lane, int l, const T* a, const T* b, Lane<T, J>& s) {
  const T down = ShScale<T>::down;
  const int64_t t0 = tri(l, 0);
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = lane + 32 * j;
    s.q[j] = 0;
    if (m <= l) {
      const T p0 = m == l ? s.seed[j] : a[t0 + m] * s.z * s.p1[j] - b[t0 + m] * s.p2[j];
      s.p2[j] = s.p1[j];
      s.p1[j] = p0;
      s.q[j] = p0 * down;
    }
  }
}

// Q at order m + 1 / m - 1 for the lane's chunk j: from lane + 1 / lane - 1, and across a
// chunk boundary from lane 0 of chunk j + 1 / lane 31 of chunk j - 1 (0 past the last / first
// chunk). Warp: down(q, j) = q[j] of lane + 1 (own on lane 31), up(q, j) = q[j] of lane - 1
// (own on lane 0), from(q, j, src) = q[j] of lane src; every lane makes the same calls (j and J
// are compile-time constants after unrolling).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <typename T, int J, class Warp>
SATCLIP_HD T order_above(const Warp& w, const T (&q)[J], int j, int lane) {
  const T v = w.down(q, j);
  const T wrap = j + 1 < J ? w.from(q, j + 1 < J ? j + 1 : j, 0) : T(0);
  return lane == 31 ? wrap : v;
}

#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <typename T, int J, class Warp>
SATCLIP_HD T order_below(const Warp& w, const T (&q)[J], int j, int lane) {
  const T v = w.up(q, j);
  const T wrap = j > 0 ? w.from(q, j > 0 ? j - 1 : 0, 31) : T(0);
  return lane == 0 ? wrap : v;
}

// Backward, degree l, step 2: the lane's share of dLoss/dlon (glon) and dLoss/dlat (glat0 from
// m = 0, glatm from m > 0, which carries sqrt(2) later), from grad row g. See sh_math.h for the
// derivative formulas.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <typename T, int J, class Warp>
SATCLIP_HD void lane_backward_accumulate(const Warp& w, int lane, int l, const Lane<T, J>& s, const T* g, T& glon,
                                         T& glat0, T& glatm) {
  const int64_t k0 = static_cast<int64_t>(l) * l + l;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = lane + 32 * j;
    const T qu = order_above<T, J>(w, s.q, j, lane);
    const T qd = order_below<T, J>(w, s.q, j, lane);
    if (m <= l) {
      const T gp = g[k0 + m];
      if (m == 0) {
        glat0 += gp * sqrt(static_cast<T>(l) * static_cast<T>(l + 1)) * qu;
      } else {
        const T gn = g[k0 - m];
        const T fm = static_cast<T>(m);
        glon += fm * s.q[j] * (gn * s.cm[j] - gp * s.sm[j]);
        const T dq = static_cast<T>(0.5) * (sqrt(static_cast<T>(l + m + 1) * static_cast<T>(l - m)) * qu -
                                            sqrt(static_cast<T>(l + m) * static_cast<T>(l - m + 1)) * qd);
        glatm += dq * (gp * s.cm[j] + gn * s.sm[j]);
      }
    }
  }
}

// The point's gradient from the warp's summed shares, in degrees^-1.
template <typename T>
SATCLIP_HD void backward_finish(T glon, T glat0, T glatm, T* out) {
  constexpr T sqrt2 = static_cast<T>(1.4142135623730951);
  constexpr T deg = static_cast<T>(0.017453292519943295);
  out[0] = glon * sqrt2 * deg;
  out[1] = (glat0 + sqrt2 * glatm) * deg;
}

}  // namespace warp
}  // namespace kernels
}  // namespace satclip

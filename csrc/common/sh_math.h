// sh_math.h -- the one source of the spherical-harmonics math, shared by the CPU and CUDA
// kernels (no torch headers here, so it compiles with g++ and nvcc alike).
//
// What it computes
//   Real, orthonormal spherical harmonics Y_lm(lon, lat) for degrees l = 0..L-1 and their
//   derivatives w.r.t. lon and lat (in degrees), for one point at a time ("lanes" = a small
//   block of independent points processed together so that the CPU compiler vectorises across
//   points; the CUDA kernels use one lane per thread).
//
// Layout and conventions (identical to sphericart and SatCLIP's feature order)
//   feature k = l*l + l + m, m = -l..l, so one point has L*L features:
//     Y_l0       = Q_l0(z)
//     Y_l,+m     = sqrt(2) * Q_lm(z) * cos(m*lon)       (m > 0)
//     Y_l,-m     = sqrt(2) * Q_lm(z) * sin(m*lon)       (m > 0)
//   with z = sin(lat) and Q_lm the orthonormal associated Legendre function without the
//   Condon-Shortley phase: Q_lm = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!) P_l^m(z).
//   SatCLIP's own conventions (sign (-1)^l, pi on m = 0) are *not* applied here; the Python
//   layer folds them into the first-layer weights or multiplies them afterwards.
//
// Numerics
//   Forward-column recurrence (fixed m, increasing l), every quantity O(1):
//     Q_mm      = sqrt((2m+1)/(2m)) * u * Q_{m-1,m-1},  u = cos(lat) >= 0, Q_00 = 1/sqrt(4 pi)
//     Q_{m+1,m} = sqrt(2m+3) * z * Q_mm
//     Q_lm      = a_lm * z * Q_{l-1,m} - b_lm * Q_{l-2,m}
//   The sectoral seeds u^m underflow for high m near the poles (float32 from m ~ 100 at
//   |lat| = 60). Following Holmes & Featherstone (2002), the whole recurrence runs on values
//   scaled by kScale (2^100 in float32, 2^900 in float64) and the scale is removed when a
//   value is written. Values that are still below the smallest normal number after unscaling
//   are genuinely negligible.
//   cos(m lon), sin(m lon) come from a rotation recurrence (error ~ m * eps); the longitude is
//   first reduced to [-180, 180] in degrees so that large |lon| costs no accuracy.
//   d/dlat uses  dQ_lm/dlat = 1/2 (sqrt((l+m+1)(l-m)) Q_{l,m+1} - sqrt((l+m)(l-m+1)) Q_{l,m-1})
//   for m >= 1 and dQ_l0/dlat = sqrt(l(l+1)) Q_l1: no division by cos(lat), so gradients are
//   finite at the poles.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SATCLIP_HD __host__ __device__ __forceinline__
#else
#define SATCLIP_HD inline
#endif

namespace satclip {
namespace kernels {

#if !defined(__CUDA_ARCH__)
using std::cos;
using std::remainder;
using std::sin;
using std::sqrt;
#endif

template <typename T>
struct ShScale;
template <>
struct ShScale<float> {
  // 2^100 / 2^-100: float32 holds ~3.4e38, real |Q_lm| <= ~sqrt(L) stays far below.
  static constexpr float up = 1.2676506002282294e30f;
  static constexpr float down = 7.888609052210118e-31f;
};
template <>
struct ShScale<double> {
  static constexpr double up = 8.452712498170644e270;     // 2^900
  static constexpr double down = 1.1830521861667747e-271;  // 2^-900
};

// Triangular index of (l, m), 0 <= m <= l: the layout of the coefficient tables and of the
// per-point Legendre table used by the backward pass.
SATCLIP_HD int64_t tri(int l, int m) { return static_cast<int64_t>(l) * (l + 1) / 2 + m; }

// Recurrence coefficients a_lm, b_lm (triangular layout, L*(L+1)/2 entries each) and the
// sectoral factors s_m = sqrt((2m+1)/(2m)) (s_0 = 1/sqrt(4 pi) * kScale, the scaled seed).
// Filled once per call on the host (or once per block on the device) in double precision.
template <typename T>
inline void sh_coefficients(int L, T* a, T* b, T* sect) {
  for (int m = 0; m < L; ++m) {
    sect[m] = m == 0 ? static_cast<T>(0.28209479177387814 * static_cast<double>(ShScale<T>::up))
                     : static_cast<T>(std::sqrt((2.0 * m + 1.0) / (2.0 * m)));
    for (int l = m; l < L; ++l) {
      double aa = 0.0, bb = 0.0;
      if (l == m + 1) {
        aa = std::sqrt(2.0 * m + 3.0);
      } else if (l >= m + 2) {
        const double ll = l, mm = m;
        aa = std::sqrt((4.0 * ll * ll - 1.0) / (ll * ll - mm * mm));
        bb = std::sqrt(((ll - 1.0) * (ll - 1.0) - mm * mm) * (2.0 * ll + 1.0) /
                       ((2.0 * ll - 3.0) * (ll * ll - mm * mm)));
      }
      a[tri(l, m)] = static_cast<T>(aa);
      b[tri(l, m)] = static_cast<T>(bb);
    }
  }
}

// sin and cos of x (the device's sincos(), which shares the range reduction).
template <typename T>
SATCLIP_HD void sin_cos(T x, T* s, T* c) {
#if defined(__CUDA_ARCH__)
  sincos(x, s, c);
#else
  *s = sin(x);
  *c = cos(x);
#endif
}

// Longitude/latitude in degrees -> (cos lon, sin lon, z = sin lat, u = cos lat), computed in T.
template <typename T>
SATCLIP_HD void sh_angles(T lon_deg, T lat_deg, T& cl, T& sl, T& z, T& u) {
  constexpr T deg = static_cast<T>(0.017453292519943295);
  // remainder() is exact, so periodic longitudes lose nothing.
  const T lon = remainder(lon_deg, static_cast<T>(360)) * deg;
  const T lat = lat_deg * deg;
  cl = cos(lon);
  sl = sin(lon);
  z = sin(lat);
  u = cos(lat);
}

// Forward for V points ("lanes"). y points at lane 0's first feature; lane j writes
// y[j * y_stride + k]. Compute type T (float or double), output type Out.
template <typename T, int V, typename Out>
SATCLIP_HD void sh_forward_lanes(const T* lon_deg, const T* lat_deg, int L, const T* a, const T* b,
                                 const T* sect, Out* y, int64_t y_stride) {
  constexpr T sqrt2 = static_cast<T>(1.4142135623730951);
  const T down = ShScale<T>::down;
  T cl[V], sl[V], z[V], u[V], cm[V], sm[V], pmm[V];
  for (int j = 0; j < V; ++j) {
    sh_angles<T>(lon_deg[j], lat_deg[j], cl[j], sl[j], z[j], u[j]);
    cm[j] = 1;
    sm[j] = 0;
    pmm[j] = sect[0];
  }
  for (int m = 0; m < L; ++m) {
    T fc[V], fs[V], p1[V], p2[V];
    if (m > 0) {
      for (int j = 0; j < V; ++j) {
        const T c = cm[j] * cl[j] - sm[j] * sl[j];
        sm[j] = sm[j] * cl[j] + cm[j] * sl[j];
        cm[j] = c;
        pmm[j] = pmm[j] * sect[m] * u[j];
      }
    }
    for (int j = 0; j < V; ++j) {
      fc[j] = m == 0 ? down : sqrt2 * down * cm[j];
      fs[j] = sqrt2 * down * sm[j];
      p1[j] = pmm[j];
    }
    // l = m
    {
      const int64_t kp = static_cast<int64_t>(m) * m + m + m, kn = static_cast<int64_t>(m) * m;
      for (int j = 0; j < V; ++j) {
        y[j * y_stride + kp] = static_cast<Out>(p1[j] * fc[j]);
        if (m > 0) y[j * y_stride + kn] = static_cast<Out>(p1[j] * fs[j]);
      }
    }
    for (int j = 0; j < V; ++j) p2[j] = 0;
    for (int l = m + 1; l < L; ++l) {
      const T al = a[tri(l, m)], bl = b[tri(l, m)];
      const int64_t k0 = static_cast<int64_t>(l) * l + l;
      for (int j = 0; j < V; ++j) {
        const T p0 = al * z[j] * p1[j] - bl * p2[j];
        p2[j] = p1[j];
        p1[j] = p0;
        y[j * y_stride + k0 + m] = static_cast<Out>(p0 * fc[j]);
        if (m > 0) y[j * y_stride + k0 - m] = static_cast<Out>(p0 * fs[j]);
      }
    }
  }
}

// Legendre table of one point: q[tri(l, m)] = Q_lm(z) (unscaled on the way out, so the
// backward's sums cannot overflow in float32 whatever grad_out holds), plus cos/sin(m lon)
// in c[m], s[m]. Used by the backward pass, which needs Q at neighbouring m.
template <typename T>
SATCLIP_HD void sh_legendre_table(T cl, T sl, T z, T u, int L, const T* a, const T* b,
                                  const T* sect, T* q, T* c, T* s) {
  const T down = ShScale<T>::down;
  T cm = 1, sm = 0, pmm = sect[0];
  for (int m = 0; m < L; ++m) {
    if (m > 0) {
      const T cc = cm * cl - sm * sl;
      sm = sm * cl + cm * sl;
      cm = cc;
      pmm = pmm * sect[m] * u;
    }
    c[m] = cm;
    s[m] = sm;
    T p1 = pmm, p2 = 0;
    q[tri(m, m)] = p1 * down;
    for (int l = m + 1; l < L; ++l) {
      const T p0 = a[tri(l, m)] * z * p1 - b[tri(l, m)] * p2;
      p2 = p1;
      p1 = p0;
      q[tri(l, m)] = p0 * down;
    }
  }
}

// Backward of one point: given g = dLoss/dY (L*L values, stride g_stride between features),
// returns dLoss/dlon and dLoss/dlat in degrees^-1. q, c, s as filled by sh_legendre_table.
template <typename T, typename In>
SATCLIP_HD void sh_backward_from_table(const In* g, int64_t g_stride, int L, const T* q, const T* c,
                                       const T* s, T& glon_deg, T& glat_deg) {
  constexpr T sqrt2 = static_cast<T>(1.4142135623730951);
  constexpr T half = static_cast<T>(0.5);
  T glon = 0, glat0 = 0, glatm = 0;  // m = 0 and m > 0 parts (the latter carry sqrt(2))
  for (int l = 0; l < L; ++l) {
    const int64_t k0 = static_cast<int64_t>(l) * l + l;
    // m = 0: Y_l0 = Q_l0, dQ_l0/dlat = sqrt(l(l+1)) Q_l1.
    if (l >= 1) {
      const T d = sqrt(static_cast<T>(l) * static_cast<T>(l + 1)) * q[tri(l, 1)];
      glat0 += static_cast<T>(g[k0 * g_stride]) * d;
    }
    for (int m = 1; m <= l; ++m) {
      const T gp = static_cast<T>(g[(k0 + m) * g_stride]);
      const T gn = static_cast<T>(g[(k0 - m) * g_stride]);
      const T qlm = q[tri(l, m)];
      // d/dlon: cos(m lon) -> -m sin(m lon), sin(m lon) -> m cos(m lon)
      glon += static_cast<T>(m) * qlm * (gn * c[m] - gp * s[m]);
      const T up = m < l ? sqrt(static_cast<T>(l + m + 1) * static_cast<T>(l - m)) * q[tri(l, m + 1)]
                         : static_cast<T>(0);
      const T dn = sqrt(static_cast<T>(l + m) * static_cast<T>(l - m + 1)) * q[tri(l, m - 1)];
      const T dq = half * (up - dn);
      glatm += dq * (gp * c[m] + gn * s[m]);
    }
  }
  constexpr T deg = static_cast<T>(0.017453292519943295);
  glon_deg = glon * sqrt2 * deg;
  glat_deg = (glat0 + sqrt2 * glatm) * deg;
}

}  // namespace kernels
}  // namespace satclip

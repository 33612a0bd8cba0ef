// fast_sincos.h -- branch-free sin and cos of one argument that GCC vectorises inside
// `#pragma omp simd` loops (glibc's scalar sin/cos are not vectorised without -ffast-math).
//
// Method: k = rint(x * 2/pi) and a three-part Cody-Waite reduction in double precision
// (the fdlibm constants: k * PIO2_1 is exact for |k| < 2^20), then Taylor polynomials on
// |r| <= pi/4 (sin to r^17, cos to r^18: truncation < 1e-17) and a quadrant swap.
// Accuracy: within 2 ulp of glibc for |x| < kFastSinCosMax in float64, 1 ulp in float32.
// Callers route larger |x| to std::sin/std::cos (see fix_large_args); the SIREN arguments
// are w0 * (W x + b) and stay far below this bound in practice.
#pragma once

#include <cmath>
#include <cstdint>

namespace satclip {
namespace kernels {

constexpr double kFastSinCosMax = 1.0e5;

inline void fast_sincos(double x, double& s, double& c) {
  constexpr double kInvPio2 = 6.36619772367581382433e-01;
  constexpr double kPio2_1 = 1.57079632673412561417e+00;
  constexpr double kPio2_2 = 6.07710050630396597660e-11;
  constexpr double kPio2_3 = 2.02226624871116645580e-21;
  const double k = std::nearbyint(x * kInvPio2);
  const double r = ((x - k * kPio2_1) - k * kPio2_2) - k * kPio2_3;
  const double r2 = r * r;
  // Horner in r^2 with 1/n! coefficients.
  double ps = 1.0 / 355687428096000.0;  // 1/17!
  ps = ps * r2 - 1.0 / 1307674368000.0;
  ps = ps * r2 + 1.0 / 6227020800.0;
  ps = ps * r2 - 1.0 / 39916800.0;
  ps = ps * r2 + 1.0 / 362880.0;
  ps = ps * r2 - 1.0 / 5040.0;
  ps = ps * r2 + 1.0 / 120.0;
  ps = ps * r2 - 1.0 / 6.0;
  const double sr = r + r * r2 * ps;
  double pc = 1.0 / 6402373705728000.0;  // 1/18!
  pc = pc * r2 - 1.0 / 20922789888000.0;
  pc = pc * r2 + 1.0 / 87178291200.0;
  pc = pc * r2 - 1.0 / 479001600.0;
  pc = pc * r2 + 1.0 / 3628800.0;
  pc = pc * r2 - 1.0 / 40320.0;
  pc = pc * r2 + 1.0 / 720.0;
  pc = pc * r2 - 1.0 / 24.0;
  pc = pc * r2 + 0.5;
  const double cr = 1.0 - r2 * pc;
  const int64_t q = static_cast<int64_t>(k) & 3;
  const double s0 = (q & 1) ? cr : sr;
  const double c0 = (q & 1) ? sr : cr;
  s = (q & 2) ? -s0 : s0;
  c = ((q + 1) & 2) ? -c0 : c0;
}

inline void fast_sincos(float x, float& s, float& c) {
  // Reduce in double (exact enough for any |x| < kFastSinCosMax), evaluate in float.
  constexpr double kInvPio2 = 6.36619772367581382433e-01;
  constexpr double kPio2_1 = 1.57079632673412561417e+00;
  constexpr double kPio2_2 = 6.07710050630396597660e-11;
  const double xd = x;
  const double k = std::nearbyint(xd * kInvPio2);
  const float r = static_cast<float>((xd - k * kPio2_1) - k * kPio2_2);
  const float r2 = r * r;
  // sin: r - r^3/3! + r^5/5! - r^7/7! + r^9/9! - r^11/11!
  float sp = -1.0f / 39916800.0f;
  sp = sp * r2 + 1.0f / 362880.0f;
  sp = sp * r2 - 1.0f / 5040.0f;
  sp = sp * r2 + 1.0f / 120.0f;
  sp = sp * r2 - 1.0f / 6.0f;
  const float sr = r + r * r2 * sp;
  // cos: 1 - r^2/2 + r^4/4! - r^6/6! + r^8/8! - r^10/10! + r^12/12!
  float cp = 1.0f / 479001600.0f;
  cp = cp * r2 - 1.0f / 3628800.0f;
  cp = cp * r2 + 1.0f / 40320.0f;
  cp = cp * r2 - 1.0f / 720.0f;
  cp = cp * r2 + 1.0f / 24.0f;
  cp = cp * r2 - 0.5f;
  const float cr = 1.0f + r2 * cp;
  const int64_t q = static_cast<int64_t>(k) & 3;
  const float s0 = (q & 1) ? cr : sr;
  const float c0 = (q & 1) ? sr : cr;
  s = (q & 2) ? -s0 : s0;
  c = ((q + 1) & 2) ? -c0 : c0;
}

}  // namespace kernels
}  // namespace satclip

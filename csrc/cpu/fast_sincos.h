// fast_sincos.h -- branch-free sin and cos of one argument, written so that GCC vectorises
// loops that call it (glibc's scalar sin/cos are not vectorised without -ffast-math).
//
// Method (all in double precision, also for float32 callers):
//   k = rint(x * 2/pi) with the 1.5 * 2^52 magic-number trick (no rounding instruction, no
//   float->int conversion, both of which block vectorisation on AVX2), a three-part
//   Cody-Waite reduction r = x - k pi/2 with the fdlibm constants (k * PIO2_1 exact for
//   |k| < 2^20), Taylor polynomials on |r| <= pi/4, and the quadrant k mod 4 recovered with
//   the same trick (floor(k/4) = rint(k/4 - 3/8)) and applied with selects.
//   Degree: sin to r^17 and cos to r^18 for float64 results (truncation < 1e-17), sin to r^11
//   and cos to r^12 for float32 results (< 2e-10).
// Accuracy: within 2 ulp of libm for |x| < kFastSinCosMax. Callers route larger |x|, inf and
// NaN to std::sin/std::cos; SIREN arguments w0 * (W x + b) stay far below the bound.
#pragma once

#include <cstdint>

namespace satclip {
namespace kernels {

constexpr double kFastSinCosMax = 1.0e5;

template <bool kFloat32Accuracy>
inline void fast_sincos_d(double x, double& s, double& c) {
  constexpr double kInvPio2 = 6.36619772367581382433e-01;
  constexpr double kPio2_1 = 1.57079632673412561417e+00;
  constexpr double kPio2_2 = 6.07710050630396597660e-11;
  constexpr double kPio2_3 = 2.02226624871116645580e-21;
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: x + kMagic - kMagic = rint(x)
  const double k = (x * kInvPio2 + kMagic) - kMagic;
  const double r = ((x - k * kPio2_1) - k * kPio2_2) - k * kPio2_3;
  const double r2 = r * r;
  double ps, pc;
  if constexpr (kFloat32Accuracy) {
    ps = -1.0 / 39916800.0;  // -1/11!
    ps = ps * r2 + 1.0 / 362880.0;
    ps = ps * r2 - 1.0 / 5040.0;
    ps = ps * r2 + 1.0 / 120.0;
    ps = ps * r2 - 1.0 / 6.0;
    pc = 1.0 / 479001600.0;  // 1/12!
    pc = pc * r2 - 1.0 / 3628800.0;
    pc = pc * r2 + 1.0 / 40320.0;
    pc = pc * r2 - 1.0 / 720.0;
    pc = pc * r2 + 1.0 / 24.0;
    pc = pc * r2 - 0.5;
  } else {
    ps = 1.0 / 355687428096000.0;  // 1/17!
    ps = ps * r2 - 1.0 / 1307674368000.0;
    ps = ps * r2 + 1.0 / 6227020800.0;
    ps = ps * r2 - 1.0 / 39916800.0;
    ps = ps * r2 + 1.0 / 362880.0;
    ps = ps * r2 - 1.0 / 5040.0;
    ps = ps * r2 + 1.0 / 120.0;
    ps = ps * r2 - 1.0 / 6.0;
    pc = 1.0 / 6402373705728000.0;  // 1/18!
    pc = pc * r2 - 1.0 / 20922789888000.0;
    pc = pc * r2 + 1.0 / 87178291200.0;
    pc = pc * r2 - 1.0 / 479001600.0;
    pc = pc * r2 + 1.0 / 3628800.0;
    pc = pc * r2 - 1.0 / 40320.0;
    pc = pc * r2 + 1.0 / 720.0;
    pc = pc * r2 - 1.0 / 24.0;
    pc = pc * r2 + 0.5;
    pc = -pc;
  }
  const double sr = r + r * r2 * ps;
  const double cr = 1.0 + r2 * pc;
  // quadrant q = k mod 4 in {0, 1, 2, 3}, as a double
  const double q = k - 4.0 * (((k * 0.25 - 0.375) + kMagic) - kMagic);
  const bool odd = (q == 1.0) | (q == 3.0);
  const double s0 = odd ? cr : sr;
  const double c0 = odd ? sr : cr;
  s = (q >= 2.0) ? -s0 : s0;
  c = ((q == 1.0) | (q == 2.0)) ? -c0 : c0;
}

inline void fast_sincos(double x, double& s, double& c) { fast_sincos_d<false>(x, s, c); }

inline void fast_sincos(float x, float& s, float& c) {
  double sd, cd;
  fast_sincos_d<true>(static_cast<double>(x), sd, cd);
  s = static_cast<float>(sd);
  c = static_cast<float>(cd);
}

}  // namespace kernels
}  // namespace satclip

// fast_sincos.h -- branch-free sin and cos of one argument, written so that GCC vectorises
// loops that call it (glibc's scalar sin/cos are not vectorised without -ffast-math).
//
// Method (float64; the float32 version below does the same in float32):
//   k = rint(x * 2/pi) with the 1.5 * 2^52 magic-number trick (no rounding instruction, no
//   float->int conversion, both of which block vectorisation on AVX2), a three-part
//   Cody-Waite reduction r = x - k pi/2 with the fdlibm constants (k * PIO2_1 exact for
//   |k| < 2^20), Taylor polynomials on |r| <= pi/4, and the quadrant k mod 4 recovered with
//   the same trick (floor(k/4) = rint(k/4 - 3/8)) and applied with selects.
//   Degree: sin to r^17 and cos to r^18 (truncation < 1e-17).
// Accuracy: float64 within 2 ulp of libm for |x| < kFastSinCosMax; float32 (computed in float
// arithmetic, below) within 2.5 ulp of the exact value for |x| <= kFastSinCosMaxF (measured
// 2.44, tests/ops/test_siren_layer.py). Callers route larger |x|, inf and NaN to
// std::sin/std::cos; SIREN arguments w0 * (W x + b) stay far below the bounds.
#pragma once

#include <cstdint>

namespace satclip {
namespace kernels {

constexpr double kFastSinCosMax = 1.0e5;

inline void fast_sincos(double x, double& s, double& c) {
  constexpr double kInvPio2 = 6.36619772367581382433e-01;
  constexpr double kPio2_1 = 1.57079632673412561417e+00;
  constexpr double kPio2_2 = 6.07710050630396597660e-11;
  constexpr double kPio2_3 = 2.02226624871116645580e-21;
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: x + kMagic - kMagic = rint(x)
  const double k = (x * kInvPio2 + kMagic) - kMagic;
  const double r = ((x - k * kPio2_1) - k * kPio2_2) - k * kPio2_3;
  const double r2 = r * r;
  double ps = 1.0 / 355687428096000.0;  // 1/17!
  ps = ps * r2 - 1.0 / 1307674368000.0;
  ps = ps * r2 + 1.0 / 6227020800.0;
  ps = ps * r2 - 1.0 / 39916800.0;
  ps = ps * r2 + 1.0 / 362880.0;
  ps = ps * r2 - 1.0 / 5040.0;
  ps = ps * r2 + 1.0 / 120.0;
  ps = ps * r2 - 1.0 / 6.0;
  double pc = 1.0 / 6402373705728000.0;  // 1/18!
  pc = pc * r2 - 1.0 / 20922789888000.0;
  pc = pc * r2 + 1.0 / 87178291200.0;
  pc = pc * r2 - 1.0 / 479001600.0;
  pc = pc * r2 + 1.0 / 3628800.0;
  pc = pc * r2 - 1.0 / 40320.0;
  pc = pc * r2 + 1.0 / 720.0;
  pc = pc * r2 - 1.0 / 24.0;
  pc = pc * r2 + 0.5;
  pc = -pc;
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

// float32: the same method in float arithmetic, so that a vector holds 8 lanes instead of 4
// (measured on [15840, 512]: the epilogue 0.53 ms per 1e6 values instead of 1.2 through double). Three-part reduction with 12-bit
// leading parts (k * P1 and k * P2 exact for |k| < 4096; |x| <= kFastSinCosMaxF has |k| <= 2608;
// the remainder pi/2 - P1 - P2 - P3 is 5.7e-18), Taylor polynomials to r^9 (sin) and r^10 (cos), whose
// truncation (< 3e-9 relative on |r| <= pi/4) is far below float32's 6e-8.
constexpr float kFastSinCosMaxF = 4096.0f;

inline void fast_sincos(float x, float& s, float& c) {
  constexpr float kInvPio2 = 0x1.45f306p-1f;  // 2/pi
  constexpr float kPio2_1 = 0x1.922p+0f;
  constexpr float kPio2_2 = -0x1.2aep-18f;
  constexpr float kPio2_3 = -0x1.de973ep-31f;
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: x + kMagic - kMagic = rint(x)
  const float k = (x * kInvPio2 + kMagic) - kMagic;
  const float r = ((x - k * kPio2_1) - k * kPio2_2) - k * kPio2_3;
  const float r2 = r * r;
  float ps = 1.0f / 362880.0f;  // 1/9!
  ps = ps * r2 - 1.0f / 5040.0f;
  ps = ps * r2 + 1.0f / 120.0f;
  ps = ps * r2 - 1.0f / 6.0f;
  float pc = -1.0f / 3628800.0f;  // -1/10!
  pc = pc * r2 + 1.0f / 40320.0f;
  pc = pc * r2 - 1.0f / 720.0f;
  pc = pc * r2 + 1.0f / 24.0f;
  pc = pc * r2 - 0.5f;
  const float sr = r + r * r2 * ps;
  const float cr = 1.0f + r2 * pc;
  const float q = k - 4.0f * (((k * 0.25f - 0.375f) + kMagic) - kMagic);
  const bool odd = (q == 1.0f) | (q == 3.0f);
  const float s0 = odd ? cr : sr;
  const float c0 = odd ? sr : cr;
  s = (q >= 2.0f) ? -s0 : s0;
  c = ((q == 1.0f) | (q == 2.0f)) ? -c0 : c0;
}

}  // namespace kernels
}  // namespace satclip

// precision.h -- the precision modes of satclip::location_encoder_forward: the string a caller
// passes is parsed here once, at the op's entry; every backend below takes the enum.
#pragma once

#include <string>
#include <string_view>

#include "op_checks.h"
#include "satclip_limits.h"

namespace satclip {

// GEMM operand formats of the encoder's precision modes: the names of satclip/_limits.json
// ("precisions"), in its order, through the generated limits.h (so Python and C++ cannot list
// different modes); the reference twin's round_operand gives their numbers.
// A new name there is a new member here (kFloat32, kTf32, kBf16, kFloat16, ...); the switches
// over Precision then say where it needs a backend.
enum class Precision { SATCLIP_PRECISION_ENUM };

inline constexpr const char* kPrecisionNames[] = {SATCLIP_PRECISION_NAMES};
inline constexpr int kPrecisionCount = sizeof(kPrecisionNames) / sizeof(kPrecisionNames[0]);

inline const char* precision_name(Precision p) { return kPrecisionNames[static_cast<int>(p)]; }

inline Precision parse_precision(std::string_view s, const Tensor& lonlat, const char* op) {
  int hit = -1;
  for (int i = 0; i < kPrecisionCount; ++i) {
    if (s == kPrecisionNames[i]) hit = i;
  }
  if (hit < 0) {  // the names listed only for the refusal, not on every call
    std::string names;
    for (const char* name : kPrecisionNames) names += std::string(names.empty() ? "'" : ", '") + name + "'";
    SATCLIP_CHECK(false, op, ": precision must be one of ", names, ", got '", std::string(s), "'");
  }
  const Precision p = static_cast<Precision>(hit);
  SATCLIP_CHECK(p == Precision::kFloat32 || lonlat.scalar_type() == ScalarType::Float, op, ": precision '",
                std::string(s), "' needs float32 inputs and weights, got ", lonlat.scalar_type());
  return p;
}

}  // namespace satclip

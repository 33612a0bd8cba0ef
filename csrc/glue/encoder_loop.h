// encoder_loop.h -- the precision modes of satclip::location_encoder_forward and the plain
// chunked encoder loop that the CUDA glue uses where it has nothing faster (its float32, float64
// and float16 modes).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "op_checks.h"

namespace satclip {

// GEMM operand formats of the encoder's precision modes (see satclip/ops/reference.py,
// PRECISIONS and round_operand: the same names in the same order). The string a caller passes is
// parsed here once; everything below takes the enum.
enum class Precision { kFloat32, kTF32, kBF16, kFloat16 };

struct PrecisionName {
  Precision p;
  const char* name;
};
inline constexpr PrecisionName kPrecisions[] = {
    {Precision::kFloat32, "float32"}, {Precision::kTF32, "tf32"}, {Precision::kBF16, "bf16"}, {Precision::kFloat16, "float16"}};

inline const char* precision_name(Precision p) {
  for (const PrecisionName& e : kPrecisions) {
    if (e.p == p) return e.name;
  }
  return "?";
}

inline Precision parse_precision(std::string_view s, const Tensor& lonlat, const char* op) {
  const PrecisionName* hit = nullptr;
  for (const PrecisionName& e : kPrecisions) {
    if (s == e.name) hit = &e;
  }
  if (hit == nullptr) {  // the names listed only for the refusal, not on every call
    std::string names;
    for (const PrecisionName& e : kPrecisions) names += std::string(names.empty() ? "'" : ", '") + e.name + "'";
    SATCLIP_CHECK(false, op, ": precision must be one of ", names, ", got '", std::string(s), "'");
  }
  SATCLIP_CHECK(hit->p == Precision::kFloat32 || lonlat.scalar_type() == ScalarType::Float, op, ": precision '",
                std::string(s), "' needs float32 inputs and weights, got ", lonlat.scalar_type());
  return hit->p;
}

// What the loop needs from a device. `round(x, p)`: x rounded to the operand format p, kept
// float32 (a float32 GEMM of rounded operands is what a tensor core computes in that mode: exact
// products, float32 accumulation); x itself for kFloat32. `addmm_out(y, b, x, w)`: y = x W^T + b.
// `sh(lonlat, L)` -> [c, L*L]; `siren(x, W, b, w0)` -> sin(w0 (x W^T + b)); `fused`, if the device
// has one for this call, the first sine layer straight from the coordinates.
struct EncoderDeviceOps {
  Tensor (*sh)(const Tensor&, int64_t);
  Tensor (*siren)(const Tensor&, const Tensor&, const Tensor&, double);
  Tensor (*round)(const Tensor&, Precision);
  void (*addmm_out)(Tensor&, const Tensor&, const Tensor&, const Tensor&);
  Tensor (*fused)(const Tensor&, int64_t, const Tensor&, const Tensor&, double) = nullptr;
};

// Inference of the whole encoder, chunk by chunk: SH of a chunk of points straight into the
// first layer, so the [N, L*L] features only ever exist for one chunk.
inline Tensor encoder_forward_chunked(const Tensor& lonlat, int64_t L, const TensorList& weights_in,
                                      const TensorList& biases, double w0_first, double w0_hidden,
                                      int64_t tile_points, std::string_view precision_name, DeviceType device,
                                      const EncoderDeviceOps& dev) {
  const int64_t width = check_encoder(lonlat, L, weights_in, biases, tile_points, device);
  const Precision precision = parse_precision(precision_name, lonlat, "satclip::location_encoder_forward");
  TensorList weights;
  for (const Tensor& w : weights_in) weights.push_back(dev.round(w, precision));
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, width}, lonlat);
  const bool fuse = dev.fused != nullptr && precision == Precision::kFloat32 && weights.size() >= 2;
  for (int64_t lo = 0; lo < n; lo += tile_points) {
    const int64_t m = std::min(n, lo + tile_points) - lo;
    const Tensor pts = rows(lonlat, lo, m);
    Tensor h = fuse ? dev.fused(pts, L, weights[0], biases[0], w0_first) : dev.sh(pts, L);
    for (size_t i = fuse ? 1 : 0; i + 1 < weights.size(); ++i) {
      h = dev.siren(dev.round(h, precision), weights[i], biases[i], i == 0 ? w0_first : w0_hidden);
    }
    Tensor dst = rows(out, lo, m);
    dev.addmm_out(dst, biases.back(), dev.round(h, precision), weights.back());
  }
  return out;
}

}  // namespace satclip

// op_checks.h -- argument checks and the encoder loop shared by the CPU and CUDA glue
// (ops_cpu.cpp, ops_cuda.cpp). Every message names the op, the argument and what was expected.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

namespace satclip {

inline void check_lonlat(const at::Tensor& lonlat, const char* op, c10::DeviceType device) {
  TORCH_CHECK(lonlat.dim() == 2 && lonlat.size(1) == 2, op,
              ": expected lonlat of shape [N, 2] (lon, lat in degrees), got ", lonlat.sizes());
  TORCH_CHECK(lonlat.scalar_type() == at::kFloat || lonlat.scalar_type() == at::kDouble, op,
              ": expected lonlat of dtype float32 or float64, got ", lonlat.scalar_type());
  TORCH_CHECK(lonlat.device().type() == device, op, ": expected a ", c10::DeviceTypeName(device),
              " tensor, got ", lonlat.device());
}

inline void check_degree(int64_t L, const char* op) {
  TORCH_CHECK(L >= 0 && L <= 4096, op, ": legendre_polys must be in [0, 4096], got ", L);
}

inline void check_sh_grad(const at::Tensor& grad, const at::Tensor& lonlat, int64_t L, const char* op) {
  const int64_t n = lonlat.size(0);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == n && grad.size(1) == L * L, op,
              ": expected grad of shape [", n, ", ", L * L, "], got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == lonlat.scalar_type(), op, ": grad dtype ", grad.scalar_type(),
              " differs from lonlat dtype ", lonlat.scalar_type());
  TORCH_CHECK(grad.device() == lonlat.device(), op, ": grad on ", grad.device(), ", lonlat on ",
              lonlat.device());
}

inline void check_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const char* op) {
  TORCH_CHECK(x.dim() == 2, op, ": expected x of shape [N, in], got ", x.sizes());
  TORCH_CHECK(w.dim() == 2 && w.size(1) == x.size(1), op, ": expected weight of shape [out, ",
              x.size(1), "], got ", w.sizes());
  TORCH_CHECK(b.dim() == 1 && b.size(0) == w.size(0), op, ": expected bias of shape [", w.size(0),
              "], got ", b.sizes());
  TORCH_CHECK(x.scalar_type() == w.scalar_type() && x.scalar_type() == b.scalar_type(), op,
              ": x, weight and bias must share one dtype, got ", x.scalar_type(), ", ",
              w.scalar_type(), ", ", b.scalar_type());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": expected float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.device() == w.device() && x.device() == b.device(), op,
              ": x, weight and bias must be on one device, got ", x.device(), ", ", w.device(), ", ",
              b.device());
}

// Returns the contiguous mask, or an undefined tensor for "no mask".
inline at::Tensor checked_mask(const std::optional<at::Tensor>& mask, const at::Tensor& like,
                               int64_t rows, int64_t cols, const char* op) {
  if (!mask.has_value()) return at::Tensor();
  TORCH_CHECK(mask->dim() == 2 && mask->size(0) == rows && mask->size(1) == cols, op,
              ": expected mask of shape [", rows, ", ", cols, "], got ", mask->sizes());
  TORCH_CHECK(mask->scalar_type() == like.scalar_type() && mask->device() == like.device(), op,
              ": mask must match x in dtype and device, got ", mask->scalar_type(), " on ",
              mask->device());
  return mask->contiguous();
}

inline void check_siren_backward(const at::Tensor& grad_y, const at::Tensor& cos, const at::Tensor& x,
                                 const at::Tensor& weight, const char* op) {
  TORCH_CHECK(weight.dim() == 2 && x.dim() == 2 && weight.size(1) == x.size(1), op,
              ": expected x [N, in] and weight [out, in], got ", x.sizes(), " and ", weight.sizes());
  const int64_t n = x.size(0), h = weight.size(0);
  TORCH_CHECK(grad_y.dim() == 2 && grad_y.size(0) == n && grad_y.size(1) == h && cos.sizes() == grad_y.sizes(),
              op, ": expected grad_y and cos of shape [", n, ", ", h, "], got ", grad_y.sizes(), " and ",
              cos.sizes());
}

// satclip::sh_siren_layer's arguments on `device` (the degree's upper limit is checked by the
// caller where the device has a lower one): weight [H, L*L], bias [H], one dtype and device
// with lonlat; precision "float32" or "bf16" (float32 inputs only). Returns whether it is bf16.
inline bool check_sh_siren_layer(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight,
                                 const at::Tensor& bias, c10::string_view precision, c10::DeviceType device) {
  const char* op = "satclip::sh_siren_layer";
  check_lonlat(lonlat, op, device);
  check_degree(L, op);
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == L * L, op, ": expected weight of shape [out, ", L * L,
              "] (L*L SH features), got ", weight.sizes());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op, ": expected bias of shape [",
              weight.size(0), "], got ", bias.sizes());
  TORCH_CHECK(weight.scalar_type() == lonlat.scalar_type() && bias.scalar_type() == lonlat.scalar_type() &&
                  weight.device() == lonlat.device() && bias.device() == lonlat.device(),
              op, ": weight and bias must match lonlat's dtype ", lonlat.scalar_type(), " and device ",
              lonlat.device(), ", got ", weight.scalar_type(), " on ", weight.device(), " and ",
              bias.scalar_type(), " on ", bias.device());
  TORCH_CHECK(precision == "float32" || precision == "bf16", op, ": precision must be 'float32' or 'bf16', got '",
              std::string(precision), "'");
  if (precision == "float32") return false;
  TORCH_CHECK(lonlat.scalar_type() == at::kFloat, op, ": precision 'bf16' needs float32 inputs and weights, got ",
              lonlat.scalar_type());
  return true;
}

// The optional per-feature factors of satclip::spherical_harmonics ([L*L], lonlat's dtype and
// device); returned contiguous, or undefined when absent.
inline at::Tensor check_sh_scale(const std::optional<at::Tensor>& scale, const at::Tensor& lonlat, int64_t L,
                                 const char* op) {
  if (!scale.has_value() || !scale->defined()) return at::Tensor();
  const at::Tensor& s = *scale;
  TORCH_CHECK(s.dim() == 1 && s.size(0) == L * L, op, ": expected scale of shape [", L * L,
              "] (one factor per feature), got ", s.sizes());
  TORCH_CHECK(s.scalar_type() == lonlat.scalar_type() && s.device() == lonlat.device(), op, ": scale (",
              s.scalar_type(), ", ", s.device(), ") must match lonlat (", lonlat.scalar_type(), ", ",
              lonlat.device(), ")");
  return s.contiguous();
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

// GEMM operand formats of the encoder's precision modes (see satclip/ops/reference.py, round_operand).
enum class Precision { kFloat32, kTF32, kBF16 };

inline Precision parse_precision(c10::string_view s, const at::Tensor& lonlat, const char* op) {
  Precision p;
  if (s == "float32") {
    p = Precision::kFloat32;
  } else if (s == "tf32") {
    p = Precision::kTF32;
  } else if (s == "bf16") {
    p = Precision::kBF16;
  } else {
    TORCH_CHECK(false, op, ": precision must be 'float32', 'tf32' or 'bf16', got '", std::string(s), "'");
  }
  TORCH_CHECK(p == Precision::kFloat32 || lonlat.scalar_type() == at::kFloat, op, ": precision '",
              std::string(s), "' needs float32 inputs and weights, got ", lonlat.scalar_type());
  return p;
}

// x rounded to the operand format, kept float32: a float32 GEMM of rounded operands is what a
// tensor core computes in that mode (exact products, float32 accumulation).
inline at::Tensor round_operand(const at::Tensor& x, Precision p) {
  if (p == Precision::kFloat32) return x;
  if (p == Precision::kBF16) return x.to(at::kBFloat16).to(at::kFloat);
  const at::Tensor i = x.contiguous().view(at::kInt);  // tf32: round to nearest even at 10 bits
  const at::Tensor lsb = at::bitwise_and(at::bitwise_right_shift(i, 13), 1);
  return at::bitwise_and(i + 0xFFF + lsb, -8192).view(at::kFloat);
}

// The encoder's arguments (location_encoder_forward); returns the output width.
inline int64_t check_encoder(const at::Tensor& lonlat, int64_t L, at::TensorList weights, at::TensorList biases,
                             int64_t tile_points, c10::DeviceType device) {
  const char* op = "satclip::location_encoder_forward";
  check_lonlat(lonlat, op, device);
  check_degree(L, op);
  TORCH_CHECK(!weights.empty() && weights.size() == biases.size(), op,
              ": expected as many biases as weights (at least one layer), got ", weights.size(),
              " weights and ", biases.size(), " biases");
  TORCH_CHECK(tile_points > 0, op, ": tile_points must be positive, got ", tile_points);
  int64_t width = L * L;
  for (size_t i = 0; i < weights.size(); ++i) {
    TORCH_CHECK(weights[i].dim() == 2 && weights[i].size(1) == width, op, ": weights[", i,
                "] must have ", width, " inputs (", i == 0 ? "L*L SH features" : "previous layer's width",
                "), got ", weights[i].sizes());
    TORCH_CHECK(biases[i].dim() == 1 && biases[i].size(0) == weights[i].size(0), op, ": biases[", i,
                "] must be [", weights[i].size(0), "], got ", biases[i].sizes());
    TORCH_CHECK(weights[i].scalar_type() == lonlat.scalar_type() &&
                    biases[i].scalar_type() == lonlat.scalar_type() &&
                    weights[i].device() == lonlat.device() && biases[i].device() == lonlat.device(),
                op, ": layer ", i, " must match lonlat's dtype ", lonlat.scalar_type(), " and device ",
                lonlat.device());
    width = weights[i].size(0);
  }
  return width;
}

// The factorised encoder's arguments (iso_latitude_encoder_forward); returns the output width.
// weights/biases: the layers after the first, with the first layer's bias at biases[0].
inline int64_t check_iso_latitude_encoder(const at::Tensor& lon_parts, const at::Tensor& row_weights,
                                          at::IntArrayRef row_counts, at::TensorList weights, at::TensorList biases,
                                          int64_t tile_points, c10::DeviceType device) {
  const char* op = "satclip::iso_latitude_encoder_forward";
  TORCH_CHECK(lon_parts.device().type() == device, op, ": lon_parts must be on ", device, ", got ",
              lon_parts.device());
  TORCH_CHECK(lon_parts.scalar_type() == at::kFloat || lon_parts.scalar_type() == at::kDouble, op,
              ": expected float32 or float64 lon_parts, got ", lon_parts.scalar_type());
  TORCH_CHECK(lon_parts.dim() == 2, op, ": lon_parts must be [n, 2L - 1], got ", lon_parts.sizes());
  TORCH_CHECK(row_weights.dim() == 3 && row_weights.size(1) == lon_parts.size(1), op,
              ": row_weights must be [rows, ", lon_parts.size(1), ", H], got ", row_weights.sizes());
  TORCH_CHECK(static_cast<int64_t>(row_counts.size()) == row_weights.size(0), op, ": expected ",
              row_weights.size(0), " row counts (one per row of row_weights), got ", row_counts.size());
  int64_t total = 0;
  for (const int64_t c : row_counts) {
    TORCH_CHECK(c >= 0, op, ": row counts must be >= 0, got ", c);
    total += c;
  }
  TORCH_CHECK(total == lon_parts.size(0), op, ": row counts sum to ", total, " but lon_parts has ",
              lon_parts.size(0), " points");
  TORCH_CHECK(!weights.empty() && biases.size() == weights.size() + 1, op,
              ": expected the layers after the first (at least the output layer) and one bias more "
              "(the first layer's), got ", weights.size(), " weights and ", biases.size(), " biases");
  TORCH_CHECK(tile_points > 0, op, ": tile_points must be positive, got ", tile_points);
  int64_t width = row_weights.size(2);
  for (size_t i = 0; i < biases.size(); ++i) {
    const at::Tensor* w = i == 0 ? &row_weights : &weights[i - 1];
    if (i > 0) {
      TORCH_CHECK(w->dim() == 2 && w->size(1) == width, op, ": weights[", i - 1, "] must have ", width,
                  " inputs (previous layer's width), got ", w->sizes());
      width = w->size(0);
    }
    TORCH_CHECK(biases[i].dim() == 1 && biases[i].size(0) == width, op, ": biases[", i, "] must be [", width,
                "], got ", biases[i].sizes());
    TORCH_CHECK(w->scalar_type() == lon_parts.scalar_type() && biases[i].scalar_type() == lon_parts.scalar_type() &&
                    w->device() == lon_parts.device() && biases[i].device() == lon_parts.device(),
                op, ": layer ", i, " must match lon_parts' dtype ", lon_parts.scalar_type(), " and device ",
                lon_parts.device());
  }
  return width;
}

// Inference of the whole encoder, chunk by chunk: SH of a chunk of points straight into the
// first layer, so the [N, L*L] features only ever exist for one chunk. `sh` and `siren` are
// the device's own ops (sh(lonlat_chunk, L) -> [c, L*L]; siren(x, W, b, w0) -> y); `fused`,
// if the device has one for this precision, computes the first sine layer from the
// coordinates directly (fused(lonlat_chunk, L, W, b, w0) -> y) and the features never exist.
using FusedFirstLayer = at::Tensor (*)(const at::Tensor&, int64_t, const at::Tensor&, const at::Tensor&, double);

template <typename ShFn, typename SirenFn>
at::Tensor encoder_forward_chunked(const at::Tensor& lonlat, int64_t L, at::TensorList weights_in,
                                   at::TensorList biases, double w0_first, double w0_hidden,
                                   int64_t tile_points, c10::string_view precision_name, c10::DeviceType device,
                                   ShFn sh, SirenFn siren, FusedFirstLayer fused = nullptr) {
  const int64_t width = check_encoder(lonlat, L, weights_in, biases, tile_points, device);
  const Precision precision = parse_precision(precision_name, lonlat, "satclip::location_encoder_forward");
  std::vector<at::Tensor> weights;
  for (const at::Tensor& w : weights_in) weights.push_back(w);
  const int64_t n = lonlat.size(0);
  at::Tensor out = at::empty({n, width}, lonlat.options());
  for (at::Tensor& w : weights) w = round_operand(w, precision);
  const at::Tensor w_last_t = weights.back().t();
  for (int64_t lo = 0; lo < n; lo += tile_points) {
    const int64_t hi = std::min(n, lo + tile_points);
    const at::Tensor pts = lonlat.slice(0, lo, hi);
    const bool fuse = fused != nullptr && precision == Precision::kFloat32 && weights.size() >= 2;
    at::Tensor h = fuse ? fused(pts, L, weights[0], biases[0], w0_first) : sh(pts, L);
    for (size_t i = fuse ? 1 : 0; i + 1 < weights.size(); ++i) {
      h = siren(round_operand(h, precision), weights[i], biases[i], i == 0 ? w0_first : w0_hidden);
    }
    at::Tensor dst = out.slice(0, lo, hi);
    at::addmm_out(dst, biases.back(), round_operand(h, precision), w_last_t);
  }
  return out;
}

}  // namespace satclip

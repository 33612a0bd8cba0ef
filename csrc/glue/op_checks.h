// op_checks.h -- argument checks shared by the CPU and CUDA glue (glue/ops_cpu.cpp,
// glue/cuda/ops_cuda.cpp). Every message names the op, the argument and what was expected.
#pragma once

#include "satclip_limits.h"
#include "stable_tensor.h"

#include <optional>
#include <string_view>
#include <vector>

namespace satclip {

inline void check_lonlat(const Tensor& lonlat, const char* op, DeviceType device) {
  SATCLIP_CHECK(lonlat.dim() == 2 && lonlat.size(1) == 2, op,
              ": expected lonlat of shape [N, 2] (lon, lat in degrees), got ", sizes(lonlat));
  SATCLIP_CHECK(lonlat.scalar_type() == ScalarType::Float || lonlat.scalar_type() == ScalarType::Double, op,
              ": expected lonlat of dtype float32 or float64, got ", lonlat.scalar_type());
  SATCLIP_CHECK(lonlat.device().type() == device, op, ": expected a ", device_type_name(device),
              " tensor, got ", lonlat.device());
}

inline void check_degree(int64_t L, const char* op) {
  // satclip/_limits.json's bound, as satclip/ops/checks.py and satclip.functional
  SATCLIP_CHECK(L >= 1 && L <= SATCLIP_MAX_DEGREE, op, ": legendre_polys must be in [1, ", SATCLIP_MAX_DEGREE, "], got ", L);
}

inline void check_sh_grad(const Tensor& grad, const Tensor& lonlat, int64_t L, const char* op) {
  const int64_t n = lonlat.size(0);
  SATCLIP_CHECK(grad.dim() == 2 && grad.size(0) == n && grad.size(1) == L * L, op,
              ": expected grad of shape [", n, ", ", L * L, "], got ", sizes(grad));
  SATCLIP_CHECK(grad.scalar_type() == lonlat.scalar_type(), op, ": grad dtype ", grad.scalar_type(),
              " differs from lonlat dtype ", lonlat.scalar_type());
  SATCLIP_CHECK(grad.device() == lonlat.device(), op, ": grad on ", grad.device(), ", lonlat on ",
              lonlat.device());
}

inline void check_linear(const Tensor& x, const Tensor& w, const Tensor& b, const char* op) {
  SATCLIP_CHECK(x.dim() == 2, op, ": expected x of shape [N, in], got ", sizes(x));
  SATCLIP_CHECK(w.dim() == 2 && w.size(1) == x.size(1), op, ": expected weight of shape [out, ",
              x.size(1), "], got ", sizes(w));
  SATCLIP_CHECK(b.dim() == 1 && b.size(0) == w.size(0), op, ": expected bias of shape [", w.size(0),
              "], got ", sizes(b));
  SATCLIP_CHECK(x.scalar_type() == w.scalar_type() && x.scalar_type() == b.scalar_type(), op,
              ": x, weight and bias must share one dtype, got ", x.scalar_type(), ", ",
              w.scalar_type(), ", ", b.scalar_type());
  SATCLIP_CHECK(x.scalar_type() == ScalarType::Float || x.scalar_type() == ScalarType::Double, op,
              ": expected float32 or float64, got ", x.scalar_type());
  SATCLIP_CHECK(x.device() == w.device() && x.device() == b.device(), op,
              ": x, weight and bias must be on one device, got ", x.device(), ", ", w.device(), ", ",
              b.device());
}

// Returns the contiguous mask, or nullopt for "no mask".
inline std::optional<Tensor> checked_mask(const std::optional<Tensor>& mask, const Tensor& like,
                                          int64_t rows, int64_t cols, const char* op) {
  if (!mask.has_value()) return std::nullopt;
  SATCLIP_CHECK(mask->dim() == 2 && mask->size(0) == rows && mask->size(1) == cols, op,
              ": expected mask of shape [", rows, ", ", cols, "], got ", sizes(*mask));
  SATCLIP_CHECK(mask->scalar_type() == like.scalar_type() && mask->device() == like.device(), op,
              ": mask must match x in dtype and device, got ", mask->scalar_type(), " on ",
              mask->device());
  return torch::stable::contiguous(*mask);
}

inline void check_siren_backward(const Tensor& grad_y, const Tensor& cos, const Tensor& x,
                                 const Tensor& weight, const char* op) {
  SATCLIP_CHECK(weight.dim() == 2 && x.dim() == 2 && weight.size(1) == x.size(1), op,
              ": expected x [N, in] and weight [out, in], got ", sizes(x), " and ", sizes(weight));
  const int64_t n = x.size(0), h = weight.size(0);
  SATCLIP_CHECK(grad_y.dim() == 2 && grad_y.size(0) == n && grad_y.size(1) == h && sizes(cos) == sizes(grad_y),
              op, ": expected grad_y and cos of shape [", n, ", ", h, "], got ", sizes(grad_y), " and ",
              sizes(cos));
}

// satclip::sh_siren_layer's arguments on `device` (the degree's upper limit is checked by the
// caller where the device has a lower one): weight [H, L*L], bias [H], one dtype and device
// with lonlat; precision "float32" or "bf16" (float32 inputs only). Returns whether it is bf16.
inline bool check_sh_siren_layer(const Tensor& lonlat, int64_t L, const Tensor& weight,
                                 const Tensor& bias, std::string_view precision, DeviceType device) {
  const char* op = "satclip::sh_siren_layer";
  check_lonlat(lonlat, op, device);
  check_degree(L, op);
  SATCLIP_CHECK(weight.dim() == 2 && weight.size(1) == L * L, op, ": expected weight of shape [out, ", L * L,
              "] (L*L SH features), got ", sizes(weight));
  SATCLIP_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op, ": expected bias of shape [",
              weight.size(0), "], got ", sizes(bias));
  SATCLIP_CHECK(weight.scalar_type() == lonlat.scalar_type() && bias.scalar_type() == lonlat.scalar_type() &&
                  weight.device() == lonlat.device() && bias.device() == lonlat.device(),
              op, ": weight and bias must match lonlat's dtype ", lonlat.scalar_type(), " and device ",
              lonlat.device(), ", got ", weight.scalar_type(), " on ", weight.device(), " and ",
              bias.scalar_type(), " on ", bias.device());
  SATCLIP_CHECK(precision == "float32" || precision == "bf16", op, ": precision must be 'float32' or 'bf16', got '",
              std::string(precision), "'");
  if (precision == "float32") return false;
  SATCLIP_CHECK(lonlat.scalar_type() == ScalarType::Float, op, ": precision 'bf16' needs float32 inputs and weights, got ",
              lonlat.scalar_type());
  return true;
}

// The optional per-feature factors of satclip::spherical_harmonics ([L*L], lonlat's dtype and
// device); returned contiguous, or nullopt when absent.
inline std::optional<Tensor> check_sh_scale(const std::optional<Tensor>& scale, const Tensor& lonlat, int64_t L,
                                            const char* op) {
  if (!scale.has_value()) return std::nullopt;
  const Tensor& s = *scale;
  SATCLIP_CHECK(s.dim() == 1 && s.size(0) == L * L, op, ": expected scale of shape [", L * L,
              "] (one factor per feature), got ", sizes(s));
  SATCLIP_CHECK(s.scalar_type() == lonlat.scalar_type() && s.device() == lonlat.device(), op, ": scale (",
              s.scalar_type(), ", ", s.device(), ") must match lonlat (", lonlat.scalar_type(), ", ",
              lonlat.device(), ")");
  return torch::stable::contiguous(s);
}

// The encoder's arguments (location_encoder_forward); returns the output width.
inline int64_t check_encoder(const Tensor& lonlat, int64_t L, TensorList weights, TensorList biases,
                             int64_t tile_points, DeviceType device) {
  const char* op = "satclip::location_encoder_forward";
  check_lonlat(lonlat, op, device);
  check_degree(L, op);
  SATCLIP_CHECK(!weights.empty() && weights.size() == biases.size(), op,
              ": expected as many biases as weights (at least one layer), got ", weights.size(),
              " weights and ", biases.size(), " biases");
  SATCLIP_CHECK(tile_points > 0, op, ": tile_points must be positive, got ", tile_points);
  int64_t width = L * L;
  for (size_t i = 0; i < weights.size(); ++i) {
    SATCLIP_CHECK(weights[i].dim() == 2 && weights[i].size(1) == width, op, ": weights[", i,
                "] must have ", width, " inputs (", i == 0 ? "L*L SH features" : "previous layer's width",
                "), got ", sizes(weights[i]));
    SATCLIP_CHECK(biases[i].dim() == 1 && biases[i].size(0) == weights[i].size(0), op, ": biases[", i,
                "] must be [", weights[i].size(0), "], got ", sizes(biases[i]));
    SATCLIP_CHECK(weights[i].scalar_type() == lonlat.scalar_type() &&
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
inline int64_t check_iso_latitude_encoder(const Tensor& lon_parts, const Tensor& row_weights,
                                          const std::vector<int64_t>& row_counts, TensorList weights, TensorList biases,
                                          int64_t tile_points, DeviceType device) {
  const char* op = "satclip::iso_latitude_encoder_forward";
  SATCLIP_CHECK(lon_parts.device().type() == device, op, ": lon_parts must be on ", device, ", got ",
              lon_parts.device());
  SATCLIP_CHECK(lon_parts.scalar_type() == ScalarType::Float || lon_parts.scalar_type() == ScalarType::Double, op,
              ": expected float32 or float64 lon_parts, got ", lon_parts.scalar_type());
  SATCLIP_CHECK(lon_parts.dim() == 2, op, ": lon_parts must be [n, 2L - 1], got ", sizes(lon_parts));
  SATCLIP_CHECK(row_weights.dim() == 3 && row_weights.size(1) == lon_parts.size(1), op,
              ": row_weights must be [rows, ", lon_parts.size(1), ", H], got ", sizes(row_weights));
  SATCLIP_CHECK(static_cast<int64_t>(row_counts.size()) == row_weights.size(0), op, ": expected ",
              row_weights.size(0), " row counts (one per row of row_weights), got ", row_counts.size());
  int64_t total = 0;
  for (const int64_t c : row_counts) {
    SATCLIP_CHECK(c >= 0, op, ": row counts must be >= 0, got ", c);
    total += c;
  }
  SATCLIP_CHECK(total == lon_parts.size(0), op, ": row counts sum to ", total, " but lon_parts has ",
              lon_parts.size(0), " points");
  SATCLIP_CHECK(!weights.empty() && biases.size() == weights.size() + 1, op,
              ": expected the layers after the first (at least the output layer) and one bias more "
              "(the first layer's), got ", weights.size(), " weights and ", biases.size(), " biases");
  SATCLIP_CHECK(tile_points > 0, op, ": tile_points must be positive, got ", tile_points);
  int64_t width = row_weights.size(2);
  for (size_t i = 0; i < biases.size(); ++i) {
    const Tensor* w = i == 0 ? &row_weights : &weights[i - 1];
    if (i > 0) {
      SATCLIP_CHECK(w->dim() == 2 && w->size(1) == width, op, ": weights[", i - 1, "] must have ", width,
                  " inputs (previous layer's width), got ", sizes(*w));
      width = w->size(0);
    }
    SATCLIP_CHECK(biases[i].dim() == 1 && biases[i].size(0) == width, op, ": biases[", i, "] must be [", width,
                "], got ", sizes(biases[i]));
    SATCLIP_CHECK(w->scalar_type() == lon_parts.scalar_type() && biases[i].scalar_type() == lon_parts.scalar_type() &&
                    w->device() == lon_parts.device() && biases[i].device() == lon_parts.device(),
                op, ": layer ", i, " must match lon_parts' dtype ", lon_parts.scalar_type(), " and device ",
                lon_parts.device());
  }
  return width;
}

// quantize_int8: [N, D] float32 embeddings on `device`.
inline void check_quantize_input(const Tensor& emb, const char* op, DeviceType device) {
  SATCLIP_CHECK(emb.dim() == 2, op, ": expected embeddings of shape [N, D], got ", sizes(emb));
  SATCLIP_CHECK(emb.scalar_type() == ScalarType::Float, op, ": expected float32 embeddings, got ",
                emb.scalar_type());
  SATCLIP_CHECK(emb.device().type() == device, op, ": expected a ", device_type_name(device), " tensor, got ",
                emb.device());
}

}  // namespace satclip

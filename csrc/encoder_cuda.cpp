// encoder_cuda.cpp -- satclip::location_encoder_forward on CUDA: the whole encoder for
// inference, chunk by chunk, in the three precision modes.
//   float32 / float64: exact; TF32 forced off; the first layer on chip or through SH + cuBLAS,
//                      whichever choose_fused picks; the other layers cuBLAS + sine pass.
//   tf32:              operands rounded to tf32 where they are produced (SH kernel, sine pass),
//                      GEMMs on TF32 tensor cores.
//   bf16:              operands stored as bf16 where they are produced (the SH kernel, the
//                      fused kernels and the sine pass round their float32 results to nearest
//                      even on the way out: exactly the reference's operand rounding), products
//                      on bf16 tensor cores summed in float32, bias + w0 + sine in float32; each
//                      sine layer fused or through cuBLAS, whichever choose_fused picks.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_glue.h"
#include "first_layer_cuda.h"
#include "fused_choice_cuda.h"
#include "hidden_layer_cuda.h"
#include "op_checks.h"
#include "tf32_scope.h"

namespace satclip {
namespace cuda {
namespace {

// cuBLAS TF32 tensor-core math on for the reduced modes and *off* for "float32", whatever the
// global setting (torch.backends.cuda.matmul.allow_tf32) says: the default stays exact. Operands
// are rounded to tf32/bf16 first, so the tensor cores see exactly the mode's operands (bf16
// values are exact in tf32) and accumulate in float32. Tf32Scope (tf32_scope.h) restores the
// user's full setting afterwards.
// What the speed of a layer depends on, as the key of its timed choice. Rows are bucketed to the
// next power of two (choice_rows_bucket), so a new batch size does not re-time (about 5 calls'
// work) and the decisions stay few.
std::string shape_key(const char* layer, const char* precision, const at::Tensor& input, int64_t in, int64_t width) {
  std::ostringstream s;
  s << layer << ", " << precision << ", " << input.scalar_type() << " input [<=" << choice_rows_bucket(input.size(0))
    << ", " << in << "] -> " << width;
  return s.str();
}

#ifdef SATCLIP_HAS_MM_OUT_DTYPE
// Per point and hidden layer of width H, the cuBLAS variant moves 6H bytes (its float32 result
// in, bf16 out) beside the GEMM; the fused variant only stores the 2H of its bf16 result.
at::Tensor encoder_forward_bf16(const at::Tensor& lonlat, int64_t L, at::TensorList weights, at::TensorList biases,
                                double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, c10::DeviceType::CUDA);
  const size_t layers = weights.size();
  std::vector<at::Tensor> w16, wt16, b32;
  for (size_t i = 0; i < layers; ++i) {
    w16.push_back(weights[i].to(at::kBFloat16));
    wt16.push_back(i + 1 < layers ? w16[i].t().contiguous() : at::Tensor());  // the fused kernels' layout
    b32.push_back(biases[i].contiguous());
  }
  const int64_t n = lonlat.size(0);
  at::Tensor out = at::empty({n, width}, lonlat.options());
  // fused[i]: sine layer i runs in this package's kernel (decided on the first chunk).
  std::vector<bool> fused(layers, false);
  for (int64_t lo = 0; lo < n; lo += tile_points) {
    const at::Tensor pts = lonlat.slice(0, lo, std::min(n, lo + tile_points));
    at::Tensor h;
    if (layers == 1) {
      h = sh_bf16(pts, L);  // the only layer is the linear one
    } else {
      if (lo == 0 && first_layer_fusable(L, true, pts)) {
        fused[0] = choose_fused(
            pts, shape_key("first layer", "bf16", pts, L * L, w16[0].size(0)),
            [&] { first_layer_bf16_on_chip(pts, L, wt16[0], b32[0], w0_first); },
            [&] { first_layer_bf16_cublas(pts, L, w16[0], b32[0], w0_first); });
      }
      h = fused[0] ? first_layer_bf16_on_chip(pts, L, wt16[0], b32[0], w0_first)
                   : first_layer_bf16_cublas(pts, L, w16[0], b32[0], w0_first);
    }
    for (size_t i = 1; i + 1 < layers; ++i) {
      if (lo == 0 && hidden_bf16_fusable(h)) {
        fused[i] = choose_fused(
            h, shape_key("hidden layer", "bf16", h, h.size(1), w16[i].size(0)),
            [&] { hidden_bf16_fused(h, wt16[i], b32[i], w0_hidden); },
            [&] { hidden_bf16_cublas(h, w16[i], b32[i], w0_hidden); });
      }
      h = fused[i] && hidden_bf16_fusable(h) ? hidden_bf16_fused(h, wt16[i], b32[i], w0_hidden) : hidden_bf16_cublas(h, w16[i], b32[i], w0_hidden);
    }
    at::Tensor dst = out.slice(0, lo, lo + pts.size(0));
    at::mm_out(dst, h, w16.back().t(), at::kFloat);
    dst.add_(b32.back());
  }
  return out;
}
#endif

// tf32: the operands are rounded where they are made -- the SH kernel stores TF32-rounded
// features, the sine pass stores TF32-rounded activations, the weights are rounded once -- so
// no separate rounding pass reads and writes the activations (about five elementwise passes of
// 8 bytes per element each before). GEMMs on TF32 tensor cores (Tf32Scope), float32 sums.
at::Tensor encoder_forward_tf32(const at::Tensor& lonlat, int64_t L, at::TensorList weights_in, at::TensorList biases,
                                double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_encoder(lonlat, L, weights_in, biases, tile_points, c10::DeviceType::CUDA);
  const Tf32Scope tf32(true);
  std::vector<at::Tensor> w;
  for (const at::Tensor& x : weights_in) w.push_back(round_operand(x, Precision::kTF32).t());
  const int64_t n = lonlat.size(0);
  at::Tensor out = at::empty({n, width}, lonlat.options());
  for (int64_t lo = 0; lo < n; lo += tile_points) {
    const at::Tensor pts = lonlat.slice(0, lo, std::min(n, lo + tile_points));
    at::Tensor h = sh_tf32(pts, L);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      at::Tensor z = at::addmm(biases[i], h, w[i]);
      sine_tf32_(z, i == 0 ? w0_first : w0_hidden);
      h = z;
    }
    at::Tensor dst = out.slice(0, lo, lo + pts.size(0));
    at::addmm_out(dst, biases.back(), h, w.back());
  }
  return out;
}

at::Tensor location_encoder_forward(const at::Tensor& lonlat, int64_t L, at::TensorList weights,
                                    at::TensorList biases, double w0_first, double w0_hidden,
                                    int64_t tile_points, c10::string_view precision) {
  check_cuda_degree(L, "satclip::location_encoder_forward");
  const c10::cuda::CUDAGuard guard(lonlat.device());
#ifdef SATCLIP_HAS_MM_OUT_DTYPE
  if (precision == "bf16" && lonlat.scalar_type() == at::kFloat) {
    return encoder_forward_bf16(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  }
#endif
  if (precision == "tf32" && lonlat.scalar_type() == at::kFloat) {
    return encoder_forward_tf32(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  }
  // bf16 without aten::mm.dtype: operands rounded to bf16 (ATen passes), TF32 tensor cores.
  const Tf32Scope tf32(precision != "float32");
  bool on_chip = false;
  const int64_t n = lonlat.size(0);
  if (precision == "float32" && weights.size() >= 2 && n > 0) {
    check_encoder(lonlat, L, weights, biases, tile_points, c10::DeviceType::CUDA);
    const at::Tensor pts = lonlat.slice(0, 0, std::min(n, tile_points));
    on_chip = first_layer_fusable(L, false, pts) &&
              choose_fused(pts, shape_key("first layer", "float32", pts, L * L, weights[0].size(0)),
                           [&] { first_layer_on_chip(pts, L, weights[0], biases[0], w0_first); },
                           [&] { first_layer_cublas(pts, L, weights[0], biases[0], w0_first); });
  }
  return encoder_forward_chunked(
      lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, precision, c10::DeviceType::CUDA, sh_forward,
      [](const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double w0) {
        return std::get<0>(siren_layer(x, w, b, w0, std::nullopt, false));
      },
      on_chip ? first_layer_on_chip : nullptr);
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

TORCH_LIBRARY_IMPL(satclip, CUDA, m) {
  m.impl("location_encoder_forward", &satclip::cuda::location_encoder_forward);
}

// encoder_cuda.cpp -- satclip::location_encoder_forward on CUDA: the whole encoder for
// inference, chunk by chunk, in the four precision modes. Every GEMM goes through this
// library's cuBLAS handle (cublas_gemm.cpp) with the math of the mode, whatever
// torch.backends.cuda.matmul.allow_tf32 says (the user's setting is neither read nor changed):
//   float32 / float64: exact (float32 / float64 products and sums); the first layer on chip or
//                      through SH + cuBLAS, whichever choose_fused picks; the other layers
//                      cuBLAS + sine pass.
//   tf32:              operands rounded to tf32 where they are produced (SH kernel, sine pass),
//                      GEMMs on TF32 tensor cores.
//   bf16:              operands stored as bf16 where they are produced (the SH kernel, the
//                      fused kernels and the sine pass round their float32 results to nearest
//                      even on the way out: exactly the reference's operand rounding), products
//                      on bf16 tensor cores summed in float32, bias + w0 + sine in float32; each
//                      sine layer fused or through cuBLAS, whichever choose_fused picks.
//   float16:           the bf16 mode's arithmetic with half operands (10 mantissa bits against
//                      bf16's 7): cuBLAS on FP16 tensor cores with float32 sums; the SH and sine
//                      passes run in float32 and torch's conversion rounds their outputs to half
//                      (one pass more per layer than bf16's fused stores; no fused kernel yet).
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "../../cuda/siren_epilogue.h"
#include "cuda_glue.h"
#include "first_layer_cuda.h"
#include "fused_choice_cuda.h"
#include "hidden_layer_cuda.h"

namespace satclip {
namespace cuda {
namespace {

// What the speed of a layer depends on, as the key of its timed choice. Rows are bucketed to the
// next power of two (choice_rows_bucket), so a new batch size does not re-time (about 5 calls'
// work) and the decisions stay few.
std::string shape_key(const char* layer, const char* precision, const Tensor& input, int64_t in, int64_t width) {
  std::ostringstream s;
  s << layer << ", " << precision << ", " << input.scalar_type() << " input [<=" << choice_rows_bucket(input.size(0))
    << ", " << in << "] -> " << width;
  return s.str();
}

// Per point and hidden layer of width H, the cuBLAS variant moves 6H bytes (its float32 result
// in, bf16 out) beside the GEMM; the fused variant only stores the 2H of its bf16 result.
Tensor encoder_forward_bf16(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                            double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CUDA);
  const size_t layers = weights.size();
  TensorList w16, wt16, b32;
  for (size_t i = 0; i < layers; ++i) {
    w16.push_back(torch::stable::to(weights[i], ScalarType::BFloat16));
    // the fused kernels' layout, W^T (the last, linear layer needs none)
    wt16.push_back(i + 1 < layers ? torch::stable::contiguous(transposed(w16[i])) : w16[i]);
    b32.push_back(torch::stable::contiguous(biases[i]));
  }
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, width}, lonlat);
  // fused[i]: sine layer i runs in this package's kernel (decided on the first chunk).
  std::vector<bool> fused(layers, false);
  for (int64_t lo = 0; lo < n; lo += tile_points) {
    const Tensor pts = rows(lonlat, lo, std::min(n, lo + tile_points) - lo);
    Tensor h = pts;
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
      h = fused[i] && hidden_bf16_fusable(h) ? hidden_bf16_fused(h, wt16[i], b32[i], w0_hidden)
                                             : hidden_bf16_cublas(h, w16[i], b32[i], w0_hidden);
    }
    Tensor dst = rows(out, lo, pts.size(0));
    addmm_into(dst, b32.back(), h, w16.back(), Math::kExact);  // bf16 operands, float32 result
  }
  return out;
}

// tf32: the operands are rounded where they are made -- the SH kernel stores TF32-rounded
// features, the sine pass stores TF32-rounded activations, the weights are rounded once -- so
// no separate rounding pass reads and writes the activations. GEMMs on TF32 tensor cores,
// float32 sums.
Tensor encoder_forward_tf32(const Tensor& lonlat, int64_t L, const TensorList& weights_in, const TensorList& biases,
                            double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_encoder(lonlat, L, weights_in, biases, tile_points, DeviceType::CUDA);
  TensorList w;
  for (const Tensor& x : weights_in) {
    const Tensor src = torch::stable::contiguous(x);
    Tensor dst = torch::stable::empty_like(src);
    SATCLIP_CUDA_CHECK(kernels::launch_round_tf32(src.const_data_ptr<float>(), dst.mutable_data_ptr<float>(),
                                                  src.numel(), stream_of(src)));
    w.push_back(dst);
  }
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, width}, lonlat);
  for (int64_t lo = 0; lo < n; lo += tile_points) {
    const Tensor pts = rows(lonlat, lo, std::min(n, lo + tile_points) - lo);
    Tensor h = sh_tf32(pts, L);
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      Tensor z = empty_like_shape({h.size(0), w[i].size(0)}, h);
      addmm_into(z, biases[i], h, w[i], Math::kTF32);
      sine_tf32_(z, i == 0 ? w0_first : w0_hidden);
      h = z;
    }
    Tensor dst = rows(out, lo, pts.size(0));
    addmm_into(dst, biases.back(), h, w.back(), Math::kTF32);
  }
  return out;
}

// float16: the shared chunked loop (encoder_loop.h) with half operands -- every GEMM operand
// converted to half where the float32 SH or sine pass produced it (round to nearest even, half's
// range: what the reference twin's round_operand does), products on FP16 tensor cores summed in
// float32 (siren_layer_exact and addmm_exact give a float32 result for half operands), bias + w0 +
// sine in float32.
Tensor to_half(const Tensor& x, Precision p) {
  SATCLIP_CHECK(p == Precision::kFloat16, "satclip: the CUDA float16 path got another precision");
  return torch::stable::to(x, ScalarType::Half);
}

// The exact mode's operands are the values themselves.
Tensor keep_operand(const Tensor& x, Precision p) {
  SATCLIP_CHECK(p == Precision::kFloat32, "satclip: the CUDA exact path got a reduced precision");
  return x;
}

void addmm_exact(Tensor& y, const Tensor& b, const Tensor& x, const Tensor& w) { addmm_into(y, b, x, w, Math::kExact); }

Tensor location_encoder_forward(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                                double w0_first, double w0_hidden, int64_t tile_points, std::string_view precision) {
  check_cuda_degree(L, "satclip::location_encoder_forward");
  const Precision p = parse_precision(precision, lonlat, "satclip::location_encoder_forward");
  const DeviceGuard guard(lonlat);
  if (p == Precision::kBF16) return encoder_forward_bf16(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  if (p == Precision::kTF32) return encoder_forward_tf32(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  if (p == Precision::kFloat16) {
    const EncoderDeviceOps dev{sh_forward, siren_layer_exact, to_half, addmm_exact};
    return encoder_forward_chunked(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, precision,
                                   DeviceType::CUDA, dev);
  }
  bool on_chip = false;
  const int64_t n = lonlat.size(0);
  if (weights.size() >= 2 && n > 0) {
    check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CUDA);
    const Tensor pts = rows(lonlat, 0, std::min(n, tile_points));
    on_chip = first_layer_fusable(L, false, pts) &&
              choose_fused(pts, shape_key("first layer", "float32", pts, L * L, weights[0].size(0)),
                           [&] { first_layer_on_chip(pts, L, weights[0], biases[0], w0_first); },
                           [&] { first_layer_cublas(pts, L, weights[0], biases[0], w0_first); });
  }
  EncoderDeviceOps dev{sh_forward, siren_layer_exact, keep_operand, addmm_exact};
  if (on_chip) dev.fused = first_layer_on_chip;
  return encoder_forward_chunked(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, precision,
                                 DeviceType::CUDA, dev);
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

STABLE_TORCH_LIBRARY_IMPL(satclip, CUDA, m) {
  m.impl("location_encoder_forward", TORCH_BOX(&satclip::cuda::location_encoder_forward));
}

// encoder_cuda.cpp -- satclip::location_encoder_forward on CUDA: the whole encoder for
// inference, chunk by chunk, in the four precision modes, as three backends of the one chunk
// driver (common/encoder_driver.h): CudaExact (float32 / float64, and float16 through its operand
// conversion), CudaTf32 and CudaBf16. Every GEMM goes through this
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

#include "../../common/encoder_driver.h"
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

// Shared by the backends: the inputs of one call.
struct EncoderCall {
  const Tensor& lonlat;
  int64_t L;
  const TensorList& biases;
  double w0_first, w0_hidden;
  int64_t tile_points;
  Tensor& out;
  double w0(int i) const { return i == 0 ? w0_first : w0_hidden; }
  Tensor points(int64_t lo, int64_t m) const { return rows(lonlat, lo, m); }
};

// float32 / float64 (exact GEMM math) and float16 (`half`: every GEMM operand converted to half
// where the float32 SH or sine pass produced it -- round to nearest even, half's range: the
// reference twin's round_operand --, products on FP16 tensor cores summed in float32;
// siren_layer_exact and addmm_into give a float32 result for half operands; bias + w0 + sine in
// float32). The float32 mode's first layer on chip or through SH + cuBLAS, whichever
// choose_fused picks (on the first chunk).
class CudaExact {
 public:
  using Act = Tensor;
  CudaExact(const EncoderCall& c, const TensorList& weights, bool half) : c_(c), half_(half) {
    for (const Tensor& w : weights) w_.push_back(operand(w));
  }
  int layers() const { return static_cast<int>(w_.size()); }
  bool fuses_first_layer() {
    if (!decided_) {
      decided_ = true;
      const Tensor pts = c_.points(0, std::min(c_.lonlat.size(0), c_.tile_points));
      on_chip_ = !half_ && first_layer_fusable(c_.L, false, pts) &&
                 choose_fused(pts, shape_key("first layer", "float32", pts, c_.L * c_.L, w_[0].size(0)),
                              [&] { first_layer_on_chip(pts, c_.L, w_[0], c_.biases[0], c_.w0_first); },
                              [&] { first_layer_cublas(pts, c_.L, w_[0], c_.biases[0], c_.w0_first); });
    }
    return on_chip_;
  }
  Act first_layer(int64_t lo, int64_t m) { return first_layer_on_chip(c_.points(lo, m), c_.L, w_[0], c_.biases[0], c_.w0_first); }
  Act features(int64_t lo, int64_t m) { return operand(sh_forward(c_.points(lo, m), c_.L)); }
  Act sine_layer(int i, const Act& x) { return operand(siren_layer_exact(x, w_[i], c_.biases[i], c_.w0(i))); }
  void linear_out(int i, const Act& x, int64_t lo, int64_t m) {
    Tensor dst = rows(c_.out, lo, m);
    addmm_into(dst, c_.biases[i], x, w_[i], Math::kExact);
  }

 private:
  Tensor operand(const Tensor& x) const { return half_ ? torch::stable::to(x, ScalarType::Half) : x; }
  const EncoderCall& c_;
  bool half_;
  TensorList w_;
  bool decided_ = false, on_chip_ = false;
};

// tf32: the operands are rounded where they are made -- the SH kernel stores TF32-rounded
// features, the sine pass stores TF32-rounded activations, the weights are rounded once -- so
// no separate rounding pass reads and writes the activations. GEMMs on TF32 tensor cores,
// float32 sums.
class CudaTf32 {
 public:
  using Act = Tensor;
  CudaTf32(const EncoderCall& c, const TensorList& weights) : c_(c) {
    for (const Tensor& x : weights) {
      const Tensor src = torch::stable::contiguous(x);
      Tensor dst = torch::stable::empty_like(src);
      SATCLIP_CUDA_CHECK(kernels::launch_round_tf32(src.const_data_ptr<float>(), dst.mutable_data_ptr<float>(),
                                                    src.numel(), stream_of(src)));
      w_.push_back(dst);
    }
  }
  int layers() const { return static_cast<int>(w_.size()); }
  bool fuses_first_layer() const { return false; }
  Act first_layer(int64_t, int64_t) { return {}; }  // never asked
  Act features(int64_t lo, int64_t m) { return sh_tf32(c_.points(lo, m), c_.L); }
  Act sine_layer(int i, const Act& x) {
    Tensor z = empty_like_shape({x.size(0), w_[i].size(0)}, x);
    addmm_into(z, c_.biases[i], x, w_[i], Math::kTF32);
    sine_tf32_(z, c_.w0(i));
    return z;
  }
  void linear_out(int i, const Act& x, int64_t lo, int64_t m) {
    Tensor dst = rows(c_.out, lo, m);
    addmm_into(dst, c_.biases[i], x, w_[i], Math::kTF32);
  }

 private:
  const EncoderCall& c_;
  TensorList w_;
};

// bf16: operands stored as bf16 where they are produced (the SH kernel, the fused kernels and the
// sine pass round their float32 results on the way out), products on bf16 tensor cores summed in
// float32, bias + w0 + sine in float32; each sine layer fused or through cuBLAS, whichever
// choose_fused picks on the first chunk. Per point and hidden layer of width H, the cuBLAS variant
// moves 6H bytes (its float32 result in, bf16 out) beside the GEMM; the fused one stores 2H.
class CudaBf16 {
 public:
  using Act = Tensor;
  CudaBf16(const EncoderCall& c, const TensorList& weights) : c_(c), fused_(weights.size(), false), decided_(weights.size(), false) {
    for (size_t i = 0; i < weights.size(); ++i) {
      w16_.push_back(torch::stable::to(weights[i], ScalarType::BFloat16));
      // the fused kernels' layout, W^T (the last, linear layer needs none)
      wt16_.push_back(i + 1 < weights.size() ? torch::stable::contiguous(transposed(w16_[i])) : w16_[i]);
      b32_.push_back(torch::stable::contiguous(c.biases[i]));
    }
  }
  int layers() const { return static_cast<int>(w16_.size()); }
  bool fuses_first_layer() const { return true; }  // both variants start from the coordinates
  Act first_layer(int64_t lo, int64_t m) {
    const Tensor pts = c_.points(lo, m);
    if (!decided_[0]) {
      decided_[0] = true;
      fused_[0] = first_layer_fusable(c_.L, true, pts) &&
                  choose_fused(pts, shape_key("first layer", "bf16", pts, c_.L * c_.L, w16_[0].size(0)),
                               [&] { first_layer_bf16_on_chip(pts, c_.L, wt16_[0], b32_[0], c_.w0_first); },
                               [&] { first_layer_bf16_cublas(pts, c_.L, w16_[0], b32_[0], c_.w0_first); });
    }
    return fused_[0] ? first_layer_bf16_on_chip(pts, c_.L, wt16_[0], b32_[0], c_.w0_first)
                     : first_layer_bf16_cublas(pts, c_.L, w16_[0], b32_[0], c_.w0_first);
  }
  Act features(int64_t lo, int64_t m) { return sh_bf16(c_.points(lo, m), c_.L); }  // the only layer is linear
  Act sine_layer(int i, const Act& h) {
    if (!decided_[i] && hidden_bf16_fusable(h)) {
      decided_[i] = true;
      fused_[i] = choose_fused(h, shape_key("hidden layer", "bf16", h, h.size(1), w16_[i].size(0)),
                               [&] { hidden_bf16_fused(h, wt16_[i], b32_[i], c_.w0_hidden); },
                               [&] { hidden_bf16_cublas(h, w16_[i], b32_[i], c_.w0_hidden); });
    }
    return fused_[i] && hidden_bf16_fusable(h) ? hidden_bf16_fused(h, wt16_[i], b32_[i], c_.w0_hidden)
                                               : hidden_bf16_cublas(h, w16_[i], b32_[i], c_.w0_hidden);
  }
  void linear_out(int i, const Act& h, int64_t lo, int64_t m) {
    Tensor dst = rows(c_.out, lo, m);
    addmm_into(dst, b32_[i], h, w16_[i], Math::kExact);  // bf16 operands, float32 result
  }

 private:
  const EncoderCall& c_;
  TensorList w16_, wt16_, b32_;
  std::vector<bool> fused_, decided_;
};

Tensor location_encoder_forward(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                                double w0_first, double w0_hidden, int64_t tile_points, std::string_view precision) {
  const char* op = "satclip::location_encoder_forward";
  check_cuda_degree(L, op);
  const Precision p = parse_precision(precision, lonlat, op);
  const DeviceGuard guard(lonlat);
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CUDA);
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, width}, lonlat);
  if (n == 0) return out;
  const EncoderCall call{lonlat, L, biases, w0_first, w0_hidden, tile_points, out};
  const std::vector<int64_t> bounds = driver::uniform_chunks(n, tile_points);
  switch (p) {  // no default: a new mode without a CUDA backend warns here (-Wswitch)
    case Precision::kBf16: {
      CudaBf16 be(call, weights);
      driver::encode_chunks(be, bounds);
      break;
    }
    case Precision::kTf32: {
      CudaTf32 be(call, weights);
      driver::encode_chunks(be, bounds);
      break;
    }
    case Precision::kFloat32:
    case Precision::kFloat16: {
      CudaExact be(call, weights, p == Precision::kFloat16);
      driver::encode_chunks(be, bounds);
      break;
    }
  }
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

STABLE_TORCH_LIBRARY_IMPL(satclip, CUDA, m) {
  m.impl("location_encoder_forward", TORCH_BOX(&satclip::cuda::location_encoder_forward));
}

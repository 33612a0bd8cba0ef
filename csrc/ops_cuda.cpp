// ops_cuda.cpp -- torch glue for the CUDA kernels: checks, device guard, allocation on the
// current stream, launch checks, and the registrations under the CUDA dispatch key.
// Uses c10/cuda headers only (ATen/cuda/CUDAContext.h needs cuSPARSE headers that an
// nvcc-only toolkit lacks).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>

#include "cuda/sh_siren_layer.h"
#include "cuda/sh_siren_tile.h"
#include "cuda/siren_epilogue.h"
#include "cuda/spherical_harmonics.h"
#include "op_checks.h"
#include "sh_math.h"

namespace satclip {
namespace {

#define SATCLIP_CUDA_CHECK(expr)                                                   \
  do {                                                                             \
    const cudaError_t err_ = (expr);                                               \
    TORCH_CHECK(err_ == cudaSuccess, "satclip CUDA kernel failed: ", cudaGetErrorString(err_)); \
  } while (0)

// Recurrence tables for (L, dtype, device), computed once on the host in double precision by
// the shared header and kept on the device (a few KB at L = 40, 8 MB at L = 1024).
struct ShTables {
  at::Tensor a, b, sect;
};

const ShTables& sh_tables(int64_t L, at::ScalarType dtype, const c10::Device& device) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int, int>, ShTables> cache;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(L, static_cast<int>(dtype), static_cast<int>(device.index()));
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const int64_t nt = L * (L + 1) / 2;
  auto opts = at::TensorOptions().dtype(dtype);
  at::Tensor a = at::empty({std::max<int64_t>(nt, 1)}, opts), b = at::empty_like(a),
             s = at::empty({std::max<int64_t>(L, 1)}, opts);
  AT_DISPATCH_FLOATING_TYPES(dtype, "satclip_sh_tables", [&] {
    kernels::sh_coefficients<scalar_t>(static_cast<int>(L), a.mutable_data_ptr<scalar_t>(),
                                       b.mutable_data_ptr<scalar_t>(), s.mutable_data_ptr<scalar_t>());
  });
  ShTables t{a.to(device), b.to(device), s.to(device)};
  return cache.emplace(key, std::move(t)).first->second;
}

void check_cuda_degree(int64_t L, const char* op) {
  check_degree(L, op);
  TORCH_CHECK(L <= kernels::kShCudaMaxL, op, ": the CUDA kernels support legendre_polys <= ",
              kernels::kShCudaMaxL, ", got ", L, " (use the CPU for higher degrees)");
}

at::Tensor sh_forward(const at::Tensor& lonlat, int64_t L) {
  const char* op = "satclip::spherical_harmonics";
  check_lonlat(lonlat, op, c10::DeviceType::CUDA);
  check_cuda_degree(L, op);
  const c10::cuda::CUDAGuard guard(lonlat.device());
  const int64_t n = lonlat.size(0);
  at::Tensor out = at::empty({n, L * L}, lonlat.options());
  if (n == 0 || L == 0) return out;
  const ShTables& t = sh_tables(L, lonlat.scalar_type(), lonlat.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(lonlat.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_fwd_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_sh_fwd<scalar_t>(
        lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
        t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(), t.sect.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), stream));
  });
  return out;
}

at::Tensor sh_backward(const at::Tensor& grad, const at::Tensor& lonlat, int64_t L) {
  const char* op = "satclip::spherical_harmonics_backward";
  check_lonlat(lonlat, op, c10::DeviceType::CUDA);
  check_cuda_degree(L, op);
  check_sh_grad(grad, lonlat, L, op);
  const c10::cuda::CUDAGuard guard(lonlat.device());
  const int64_t n = lonlat.size(0);
  at::Tensor g = grad.stride(1) == 1 ? grad : grad.contiguous();
  at::Tensor out = at::empty({n, 2}, lonlat.options());
  if (n == 0) return out;
  const ShTables& t = sh_tables(L, lonlat.scalar_type(), lonlat.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(lonlat.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_bwd_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_sh_bwd<scalar_t>(
        g.const_data_ptr<scalar_t>(), g.stride(0), lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0),
        lonlat.stride(1), n, static_cast<int>(L), t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(),
        t.sect.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), stream));
  });
  return out;
}

// In place on the pre-activation y = x W^T + b: mask, w0, sine (and the cosine if c is given).
void sine_epilogue(at::Tensor& y, const at::Tensor& m, double w0, at::Tensor* c) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(y.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "satclip_siren_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_siren_epilogue<scalar_t>(
        y.mutable_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m), static_cast<scalar_t>(w0), y.numel(),
        c != nullptr ? c->mutable_data_ptr<scalar_t>() : nullptr, stream));
  });
}

// GEMM through ATen (cuBLAS), then one elementwise pass: mask, w0, sine (and cosine if asked).
std::tuple<at::Tensor, at::Tensor> siren_layer(const at::Tensor& x, const at::Tensor& weight,
                                               const at::Tensor& bias, double w0,
                                               const std::optional<at::Tensor>& mask, bool save_cos) {
  const char* op = "satclip::siren_layer";
  check_linear(x, weight, bias, op);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor m = checked_mask(mask, x, x.size(0), weight.size(0), op);
  at::Tensor y = at::addmm(bias, x, weight.t());
  at::Tensor c = save_cos ? at::empty_like(y) : at::empty({0}, y.options());
  sine_epilogue(y, m, w0, save_cos ? &c : nullptr);
  return {y, c};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> siren_layer_backward(
    const at::Tensor& grad_y, const at::Tensor& cos, const at::Tensor& x, const at::Tensor& weight,
    double w0, const std::optional<at::Tensor>& mask, bool need_grad_x) {
  const char* op = "satclip::siren_layer_backward";
  check_siren_backward(grad_y, cos, x, weight, op);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor m = checked_mask(mask, x, x.size(0), weight.size(0), op);
  at::Tensor gy = grad_y.contiguous(), cc = cos.contiguous();
  at::Tensor gz = at::empty_like(gy);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "satclip_siren_bwd_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_siren_grad_epilogue<scalar_t>(
        gy.const_data_ptr<scalar_t>(), cc.const_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
        static_cast<scalar_t>(w0), gz.numel(), gz.mutable_data_ptr<scalar_t>(), stream));
  });
  return {need_grad_x ? at::mm(gz, weight) : x.new_empty({0}), at::mm(gz.t(), x), gz.sum(0)};
}

// SH -> first sine layer in one kernel (the features stay in shared memory) for
// 1 <= L <= 64; other degrees compose the two ops above.
at::Tensor sh_siren_layer(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight, const at::Tensor& bias,
                          double w0) {
  const char* op = "satclip::sh_siren_layer";
  check_lonlat(lonlat, op, c10::DeviceType::CUDA);
  check_cuda_degree(L, op);
  check_first_layer(lonlat, L, weight, bias, op);
  const c10::cuda::CUDAGuard guard(lonlat.device());
  if (L < 1 || L > kernels::fused::kMaxL) {
    return std::get<0>(siren_layer(sh_forward(lonlat, L), weight, bias, w0, std::nullopt, false));
  }
  const int64_t n = lonlat.size(0), h = weight.size(0);
  at::Tensor out = at::empty({n, h}, lonlat.options());
  if (n == 0 || h == 0) return out;
  const ShTables& t = sh_tables(L, lonlat.scalar_type(), lonlat.device());
  const at::Tensor wt = weight.t().contiguous();  // [L*L, H]: coalesced band loads
  const at::Tensor b = bias.contiguous();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(lonlat.device().index()).stream();
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_siren_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_sh_siren<scalar_t>(
        lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
        t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(), t.sect.const_data_ptr<scalar_t>(),
        wt.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), static_cast<int>(h),
        static_cast<scalar_t>(w0), out.mutable_data_ptr<scalar_t>(), stream));
  });
  return out;
}

// cuBLAS TF32 tensor-core math on for the reduced modes and *off* for "float32", whatever the
// global setting (torch.backends.cuda.matmul.allow_tf32) says: the default stays exact. Operands
// are rounded to tf32/bf16 first, so the tensor cores see exactly the mode's operands (bf16
// values are exact in tf32) and accumulate in float32.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool on) : previous_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuBLAS(on);
  }
  ~Tf32Scope() { at::globalContext().setAllowTF32CuBLAS(previous_); }

 private:
  bool previous_;
};

#ifdef SATCLIP_HAS_MM_OUT_DTYPE
// The bf16 mode on CUDA. Every GEMM operand is stored as bf16 where it is produced -- the SH
// kernel and the sine epilogue round their float32 results to nearest even on the way out,
// which is exactly the reference's operand rounding -- so no pass converts a float32 matrix;
// the GEMMs run on bf16 tensor cores into float32 (aten::mm.dtype), bias + w0 + sine in
// float32. Per point and layer of width H this moves 6H bytes (float32 GEMM result in, bf16
// out) instead of the 18H of GEMM + bias pass + sine pass + conversion.
at::Tensor encoder_forward_bf16(const at::Tensor& lonlat, int64_t L, at::TensorList weights, at::TensorList biases,
                                double w0_first, double w0_hidden, int64_t chunk_size) {
  const int64_t width = check_encoder(lonlat, L, weights, biases, chunk_size, c10::DeviceType::CUDA);
  std::vector<at::Tensor> w16, b32;
  for (size_t i = 0; i < weights.size(); ++i) {
    w16.push_back(weights[i].to(at::kBFloat16));
    b32.push_back(biases[i].contiguous());
  }
  const int64_t n = lonlat.size(0);
  const auto bf16 = lonlat.options().dtype(at::kBFloat16);
  at::Tensor out = at::empty({n, width}, lonlat.options());
  const ShTables& t = sh_tables(L, at::kFloat, lonlat.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(lonlat.device().index()).stream();
  auto as_nv = [](at::Tensor& x) { return reinterpret_cast<__nv_bfloat16*>(x.mutable_data_ptr<at::BFloat16>()); };
  for (int64_t lo = 0; lo < n; lo += chunk_size) {
    const int64_t hi = std::min(n, lo + chunk_size), c = hi - lo;
    const at::Tensor pts = lonlat.slice(0, lo, hi);
    at::Tensor h = at::empty({c, L * L}, bf16);
    SATCLIP_CUDA_CHECK(kernels::launch_sh_fwd_bf16(pts.const_data_ptr<float>(), pts.stride(0), pts.stride(1), c,
                                                   static_cast<int>(L), t.a.const_data_ptr<float>(),
                                                   t.b.const_data_ptr<float>(), t.sect.const_data_ptr<float>(),
                                                   as_nv(h), stream));
    for (size_t i = 0; i + 1 < w16.size(); ++i) {
      const at::Tensor z = at::mm(h, w16[i].t(), at::kFloat);
      h = at::empty({c, z.size(1)}, bf16);
      SATCLIP_CUDA_CHECK(kernels::launch_bias_sine_bf16(z.const_data_ptr<float>(), b32[i].const_data_ptr<float>(),
                                                        static_cast<float>(i == 0 ? w0_first : w0_hidden), c,
                                                        z.size(1), as_nv(h), stream));
    }
    at::Tensor dst = out.slice(0, lo, hi);
    at::mm_out(dst, h, w16.back().t(), at::kFloat);
    dst.add_(b32.back());
  }
  return out;
}
#endif

// Which first layer the exact modes use: the on-chip kernel (sh_siren_layer) or the SH kernel
// + cuBLAS. "auto" (the default) times both once per (device, dtype, L, width, chunk rows) on
// the first chunk and keeps the faster: neither is known to win everywhere (a SIMT kernel that
// saves the feature traffic against cuBLAS's tuned GEMM). Set by SATCLIP_CUDA_FIRST_LAYER
// (auto | on-chip | cublas) or satclip::_cuda_first_layer(mode).
struct FirstLayerChoice {
  std::mutex mu;
  std::string mode;  // empty until read from the environment
  std::map<std::tuple<int, int, int64_t, int64_t, int64_t>, std::pair<bool, std::string>> decided;
};

FirstLayerChoice& first_layer_choice() {
  static FirstLayerChoice c;
  return c;
}

void check_first_layer_mode(const std::string& mode, const char* where) {
  TORCH_CHECK(mode == "auto" || mode == "on-chip" || mode == "cublas", where,
              " must be 'auto', 'on-chip' or 'cublas', got '", mode, "'");
}

std::string first_layer_mode_locked(FirstLayerChoice& c) {
  if (c.mode.empty()) {
    const char* env = std::getenv("SATCLIP_CUDA_FIRST_LAYER");
    const std::string mode = env != nullptr && *env != '\0' ? env : "auto";
    check_first_layer_mode(mode, "the environment variable SATCLIP_CUDA_FIRST_LAYER");
    c.mode = mode;
  }
  return c.mode;
}

// Milliseconds of one run of f on the current stream, after one warm-up run (module loading,
// cuBLAS heuristics).
template <typename F>
float time_once(F&& f, cudaStream_t stream) {
  f();
  cudaEvent_t e0, e1;
  SATCLIP_CUDA_CHECK(cudaEventCreate(&e0));
  SATCLIP_CUDA_CHECK(cudaEventCreate(&e1));
  SATCLIP_CUDA_CHECK(cudaEventRecord(e0, stream));
  f();
  SATCLIP_CUDA_CHECK(cudaEventRecord(e1, stream));
  SATCLIP_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  SATCLIP_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return ms;
}

bool first_layer_on_chip(const at::Tensor& pts, int64_t L, const at::Tensor& w, const at::Tensor& b, double w0) {
  if (L < 1 || L > kernels::fused::kMaxL) return false;
  FirstLayerChoice& c = first_layer_choice();
  const auto key = std::make_tuple(static_cast<int>(pts.device().index()), static_cast<int>(pts.scalar_type()), L,
                                   w.size(0), pts.size(0));
  {
    std::lock_guard<std::mutex> lock(c.mu);
    const std::string mode = first_layer_mode_locked(c);
    if (mode != "auto") return mode == "on-chip";
    auto it = c.decided.find(key);
    if (it != c.decided.end()) return it->second.first;
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(pts.device().index()).stream();
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  SATCLIP_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return true;  // no timing inside a CUDA graph capture
  const float chip = time_once([&] { sh_siren_layer(pts, L, w, b, w0); }, stream);
  const float blas =
      time_once([&] { siren_layer(sh_forward(pts, L), w, b, w0, std::nullopt, false); }, stream);
  std::ostringstream why;
  why << "L=" << L << " width=" << w.size(0) << " rows=" << pts.size(0) << " " << pts.scalar_type()
      << ": on-chip " << chip << " ms, cublas " << blas << " ms";
  std::lock_guard<std::mutex> lock(c.mu);
  return c.decided.emplace(key, std::make_pair(chip <= blas, why.str())).first->second.first;
}

// satclip::_cuda_first_layer(mode): sets the mode ("" keeps it) and reports it with the
// choices "auto" has made so far.
std::string cuda_first_layer(c10::string_view mode) {
  FirstLayerChoice& c = first_layer_choice();
  std::lock_guard<std::mutex> lock(c.mu);
  if (!mode.empty()) {
    check_first_layer_mode(std::string(mode), "satclip::_cuda_first_layer: mode");
    c.mode = std::string(mode);
  }
  std::ostringstream out;
  out << first_layer_mode_locked(c);
  for (const auto& [key, choice] : c.decided) {
    out << "\n" << (choice.first ? "on-chip" : "cublas") << " (" << choice.second << ")";
  }
  return out.str();
}

at::Tensor location_encoder_forward(const at::Tensor& lonlat, int64_t L, at::TensorList weights,
                                    at::TensorList biases, double w0_first, double w0_hidden,
                                    int64_t chunk_size, c10::string_view precision) {
  check_cuda_degree(L, "satclip::location_encoder_forward");
  const c10::cuda::CUDAGuard guard(lonlat.device());
#ifdef SATCLIP_HAS_MM_OUT_DTYPE
  if (precision == "bf16" && lonlat.scalar_type() == at::kFloat) {
    return encoder_forward_bf16(lonlat, L, weights, biases, w0_first, w0_hidden, chunk_size);
  }
#endif
  // float32 / float64: exact, TF32 forced off; the first layer on chip (sh_siren_layer) or
  // through SH + cuBLAS, whichever is faster here (first_layer_on_chip).
  // tf32 (and bf16 without aten::mm.dtype): operands rounded to the mode (bf16 values are
  // exact in tf32), GEMMs on TF32 tensor cores.
  const Tf32Scope tf32(precision != "float32");
  bool on_chip = false;
  if (precision == "float32" && weights.size() >= 2 && lonlat.size(0) > 0) {
    check_encoder(lonlat, L, weights, biases, chunk_size, c10::DeviceType::CUDA);
    on_chip = first_layer_on_chip(lonlat.slice(0, 0, std::min(lonlat.size(0), chunk_size)), L, weights[0],
                                  biases[0], w0_first);
  }
  return encoder_forward_chunked(
      lonlat, L, weights, biases, w0_first, w0_hidden, chunk_size, precision, c10::DeviceType::CUDA, sh_forward,
      [](const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double w0) {
        return std::get<0>(siren_layer(x, w, b, w0, std::nullopt, false));
      },
      on_chip ? sh_siren_layer : nullptr);
}

}  // namespace
}  // namespace satclip

TORCH_LIBRARY_FRAGMENT(satclip, m) { m.def("_cuda_first_layer(str mode=\"\") -> str", &satclip::cuda_first_layer); }

TORCH_LIBRARY_IMPL(satclip, CUDA, m) {
  m.impl("spherical_harmonics", &satclip::sh_forward);
  m.impl("spherical_harmonics_backward", &satclip::sh_backward);
  m.impl("siren_layer", &satclip::siren_layer);
  m.impl("siren_layer_backward", &satclip::siren_layer_backward);
  m.impl("location_encoder_forward", &satclip::location_encoder_forward);
  m.impl("sh_siren_layer", &satclip::sh_siren_layer);
}

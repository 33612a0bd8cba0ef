// first_layer_cuda.cpp -- satclip::sh_siren_layer on CUDA (the first sine layer straight from
// the coordinates) and the choice the encoder makes between it and SH + cuBLAS.
//
// float32 / float64: the SIMT kernel of cuda/sh_siren_tile.h. bf16: the tensor-core kernel of
// cuda/sh_siren_bf16_tile.h (sm_80+). Both keep the SH features in shared memory and cover
// 1 <= L <= 64; other degrees (and bf16 before sm_80) compose the SH kernel with cuBLAS.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>

#include "cuda/sh_siren_layer.h"
#include "cuda/sh_siren_tile.h"
#include "cuda/siren_epilogue.h"
#include "cuda/spherical_harmonics.h"
#include "cuda_glue.h"
#include "first_layer_cuda.h"
#include "op_checks.h"

namespace satclip {
namespace cuda {
namespace {

bool on_chip_degree(int64_t L) { return L >= 1 && L <= kernels::fused::kMaxL; }

bool device_has_bf16_mma(const at::Tensor& t) {
  int major = 0;
  SATCLIP_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, t.device().index()));
  return major >= 8;
}

}  // namespace

at::Tensor first_layer_on_chip(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight,
                               const at::Tensor& bias, double w0) {
  const int64_t n = lonlat.size(0), h = weight.size(0);
  at::Tensor out = at::empty({n, h}, lonlat.options());
  if (n == 0 || h == 0) return out;
  const ShTables& t = sh_tables(L, lonlat.scalar_type(), lonlat.device());
  const at::Tensor wt = weight.t().contiguous();  // [L*L, H]: coalesced band loads
  const at::Tensor b = bias.contiguous();
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_siren_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_sh_siren<scalar_t>(
        lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
        t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(), t.sect.const_data_ptr<scalar_t>(),
        wt.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), static_cast<int>(h),
        static_cast<scalar_t>(w0), out.mutable_data_ptr<scalar_t>(), stream_of(lonlat)));
  });
  return out;
}

at::Tensor first_layer_cublas(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight, const at::Tensor& bias,
                              double w0) {
  return std::get<0>(siren_layer(sh_forward(lonlat, L), weight, bias, w0, std::nullopt, false));
}

at::Tensor first_layer_bf16_on_chip(const at::Tensor& lonlat, int64_t L, const at::Tensor& wt16,
                                    const at::Tensor& bias, double w0) {
  const int64_t n = lonlat.size(0), h = wt16.size(1);
  at::Tensor out = at::empty({n, h}, lonlat.options().dtype(at::kBFloat16));
  if (n == 0 || h == 0) return out;
  const ShTables& t = sh_tables(L, at::kFloat, lonlat.device());
  const at::Tensor b = bias.contiguous();
  SATCLIP_CUDA_CHECK(kernels::launch_sh_siren_bf16(
      lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
      t.a.const_data_ptr<float>(), t.b.const_data_ptr<float>(), t.sect.const_data_ptr<float>(), bf16_ptr(wt16),
      b.const_data_ptr<float>(), static_cast<int>(h), static_cast<float>(w0), bf16_ptr(out), stream_of(lonlat)));
  return out;
}

at::Tensor sine_bf16(const at::Tensor& z, const at::Tensor& bias, double w0) {
  at::Tensor h = at::empty(z.sizes(), z.options().dtype(at::kBFloat16));
  const at::Tensor b = bias.contiguous();
  SATCLIP_CUDA_CHECK(kernels::launch_bias_sine_bf16(z.const_data_ptr<float>(), b.const_data_ptr<float>(),
                                                    static_cast<float>(w0), z.size(0), z.size(1), bf16_ptr(h),
                                                    stream_of(z)));
  return h;
}

at::Tensor sh_bf16(const at::Tensor& lonlat, int64_t L) {
  const int64_t n = lonlat.size(0);
  at::Tensor h = at::empty({n, L * L}, lonlat.options().dtype(at::kBFloat16));
  const ShTables& t = sh_tables(L, at::kFloat, lonlat.device());
  SATCLIP_CUDA_CHECK(kernels::launch_sh_fwd_bf16(lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1),
                                                 n, static_cast<int>(L), t.a.const_data_ptr<float>(),
                                                 t.b.const_data_ptr<float>(), t.sect.const_data_ptr<float>(),
                                                 bf16_ptr(h), stream_of(lonlat)));
  return h;
}

at::Tensor first_layer_bf16_cublas(const at::Tensor& lonlat, int64_t L, const at::Tensor& w16, const at::Tensor& bias,
                                   double w0) {
#ifdef SATCLIP_HAS_MM_OUT_DTYPE
  return sine_bf16(at::mm(sh_bf16(lonlat, L), w16.t(), at::kFloat), bias, w0);
#else
  // No bf16 x bf16 -> float32 GEMM in this torch: the same products of bf16 values in float32.
  return sine_bf16(at::mm(sh_bf16(lonlat, L).to(at::kFloat), w16.to(at::kFloat).t()), bias, w0);
#endif
}

// ------------------------------------------------------------------ the encoder's choice
namespace {

struct Choices {
  std::mutex mu;
  std::string mode;  // empty until read from the environment
  std::map<std::tuple<int, std::string, int64_t, int64_t, int64_t>, std::pair<bool, std::string>> decided;
};

Choices& choices() {
  static Choices c;
  return c;
}

void check_mode(const std::string& mode, const char* where) {
  TORCH_CHECK(mode == "auto" || mode == "on-chip" || mode == "cublas", where,
              " must be 'auto', 'on-chip' or 'cublas', got '", mode, "'");
}

std::string mode_locked(Choices& c) {
  if (c.mode.empty()) {
    const char* env = std::getenv("SATCLIP_CUDA_FIRST_LAYER");
    const std::string mode = env != nullptr && *env != '\0' ? env : "auto";
    check_mode(mode, "the environment variable SATCLIP_CUDA_FIRST_LAYER");
    c.mode = mode;
  }
  return c.mode;
}

// Milliseconds of one run of f on the stream, after a warm-up run (module loading, cuBLAS
// heuristics).
float time_once(const std::function<void()>& f, cudaStream_t stream) {
  f();
  cudaEvent_t e0, e1;
  SATCLIP_CUDA_CHECK(cudaEventCreate(&e0));
  SATCLIP_CUDA_CHECK(cudaEventCreate(&e1));
  float ms = 0;
  cudaError_t err = cudaEventRecord(e0, stream);
  if (err == cudaSuccess) {
    f();
    err = cudaEventRecord(e1, stream);
  }
  if (err == cudaSuccess) err = cudaEventSynchronize(e1);
  if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, e0, e1);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  SATCLIP_CUDA_CHECK(err);
  return ms;
}

}  // namespace

bool choose_on_chip(const at::Tensor& pts, int64_t L, int64_t width, const char* precision,
                    const std::function<void()>& on_chip, const std::function<void()>& cublas) {
  if (!on_chip_degree(L) || pts.size(0) == 0) return false;
  if (std::string(precision) == "bf16" && !device_has_bf16_mma(pts)) return false;
  Choices& c = choices();
  const auto key = std::make_tuple(static_cast<int>(pts.device().index()),
                                   std::string(precision) + "/" + std::string(c10::toString(pts.scalar_type())), L,
                                   width, pts.size(0));
  {
    std::lock_guard<std::mutex> lock(c.mu);
    const std::string mode = mode_locked(c);
    if (mode != "auto") return mode == "on-chip";
    auto it = c.decided.find(key);
    if (it != c.decided.end()) return it->second.first;
  }
  const cudaStream_t stream = stream_of(pts);
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  SATCLIP_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return true;  // no timing inside a CUDA graph capture
  const float chip = time_once(on_chip, stream), blas = time_once(cublas, stream);
  std::ostringstream why;
  why << precision << " " << pts.scalar_type() << " L=" << L << " width=" << width << " rows=" << pts.size(0)
      << ": on-chip " << chip << " ms, cublas " << blas << " ms";
  std::lock_guard<std::mutex> lock(c.mu);
  return c.decided.emplace(key, std::make_pair(chip <= blas, why.str())).first->second.first;
}

namespace {

// satclip::_cuda_first_layer(mode): sets the mode ("" keeps it) and reports it, then one line
// per choice "auto" has made.
std::string first_layer_mode(c10::string_view mode) {
  Choices& c = choices();
  std::lock_guard<std::mutex> lock(c.mu);
  if (!mode.empty()) {
    check_mode(std::string(mode), "satclip::_cuda_first_layer: mode");
    c.mode = std::string(mode);
  }
  std::ostringstream out;
  out << mode_locked(c);
  for (const auto& [key, choice] : c.decided) {
    out << "\n" << (choice.first ? "on-chip" : "cublas") << " (" << choice.second << ")";
  }
  return out.str();
}

at::Tensor sh_siren_layer(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight, const at::Tensor& bias,
                          double w0, c10::string_view precision) {
  const char* op = "satclip::sh_siren_layer";
  check_lonlat(lonlat, op, c10::DeviceType::CUDA);
  check_cuda_degree(L, op);
  check_first_layer(lonlat, L, weight, bias, op);
  const bool bf16 = first_layer_is_bf16(precision, lonlat, op);
  const c10::cuda::CUDAGuard guard(lonlat.device());
  if (!bf16) {
    return on_chip_degree(L) ? first_layer_on_chip(lonlat, L, weight, bias, w0)
                             : first_layer_cublas(lonlat, L, weight, bias, w0);
  }
  const at::Tensor w16 = weight.to(at::kBFloat16);
  if (on_chip_degree(L) && device_has_bf16_mma(lonlat)) {
    return first_layer_bf16_on_chip(lonlat, L, w16.t().contiguous(), bias, w0);
  }
  return first_layer_bf16_cublas(lonlat, L, w16, bias, w0);
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

TORCH_LIBRARY_FRAGMENT(satclip, m) {
  m.def("_cuda_first_layer(str mode=\"\") -> str", &satclip::cuda::first_layer_mode);
}

TORCH_LIBRARY_IMPL(satclip, CUDA, m) { m.impl("sh_siren_layer", &satclip::cuda::sh_siren_layer); }

// ops_cuda.cpp -- torch glue for the CUDA SH and SIREN-layer kernels: checks, device guard,
// allocation on the current stream, launch checks, and their registrations under the CUDA
// dispatch key. The first layer from coordinates: first_layer_cuda.cpp; the encoder forward:
// encoder_cuda.cpp; what they share: cuda_glue.h.
// Uses c10/cuda headers only (ATen/cuda/CUDAContext.h needs cuSPARSE headers that an
// nvcc-only toolkit lacks).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <map>
#include <mutex>
#include <tuple>

#include "cuda/siren_epilogue.h"
#include "cuda/spherical_harmonics.h"
#include "cuda_glue.h"
#include "op_checks.h"
#include "sh_math.h"

namespace satclip {
namespace cuda {

namespace {

// A device copy of the host tensor h that goes neither through the current (perhaps captured)
// stream nor through the caching allocator: raw cudaMalloc + a copy on a private stream, with the
// thread's capture mode relaxed meanwhile. So the first call of an op may happen inside CUDA graph
// capture (a pageable copy on the capturing stream would fail it), and the cached tables never
// belong to a graph's private memory pool.
at::Tensor upload_outside_capture(const at::Tensor& h, const c10::Device& device) {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  SATCLIP_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  void* ptr = nullptr;
  cudaStream_t side = nullptr;
  const size_t bytes = h.nbytes();
  cudaError_t err = cudaMalloc(&ptr, bytes);
  if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking);
  if (err == cudaSuccess) err = cudaMemcpyAsync(ptr, h.const_data_ptr(), bytes, cudaMemcpyHostToDevice, side);
  if (err == cudaSuccess) err = cudaStreamSynchronize(side);
  if (side != nullptr) cudaStreamDestroy(side);
  cudaThreadExchangeStreamCaptureMode(&mode);  // back to the caller's mode
  if (err != cudaSuccess && ptr != nullptr) cudaFree(ptr);
  SATCLIP_CUDA_CHECK(err);
  return at::from_blob(ptr, h.sizes(), [](void* p) { cudaFree(p); }, h.options().device(device));
}

}  // namespace

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
  ShTables t{upload_outside_capture(a, device), upload_outside_capture(b, device), upload_outside_capture(s, device)};
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
  const cudaStream_t stream = stream_of(lonlat);
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
  const cudaStream_t stream = stream_of(lonlat);
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_bwd_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_sh_bwd<scalar_t>(
        g.const_data_ptr<scalar_t>(), g.stride(0), lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0),
        lonlat.stride(1), n, static_cast<int>(L), t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(),
        t.sect.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), stream));
  });
  return out;
}

void sine_epilogue(at::Tensor& y, const at::Tensor& m, double w0, at::Tensor* c) {
  const cudaStream_t stream = stream_of(y);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "satclip_siren_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_siren_epilogue<scalar_t>(
        y.mutable_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m), static_cast<scalar_t>(w0), y.numel(),
        c != nullptr ? c->mutable_data_ptr<scalar_t>() : nullptr, stream));
  });
}

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
  const cudaStream_t stream = stream_of(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "satclip_siren_bwd_cuda", [&] {
    SATCLIP_CUDA_CHECK(kernels::launch_siren_grad_epilogue<scalar_t>(
        gy.const_data_ptr<scalar_t>(), cc.const_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
        static_cast<scalar_t>(w0), gz.numel(), gz.mutable_data_ptr<scalar_t>(), stream));
  });
  return {need_grad_x ? at::mm(gz, weight) : x.new_empty({0}), at::mm(gz.t(), x), gz.sum(0)};
}

namespace {

// The registered op: SH, then the optional per-feature factors in one more pass (on the GPU the
// SH kernel is bound by its output's bandwidth; storing the factor inside the kernel is left for
// a GPU session to measure).
at::Tensor sh_forward_op(const at::Tensor& lonlat, int64_t L, const std::optional<at::Tensor>& scale) {
  const at::Tensor s = check_sh_scale(scale, lonlat, L, "satclip::spherical_harmonics");
  at::Tensor y = sh_forward(lonlat, L);
  if (s.defined()) y.mul_(s);
  return y;
}

}  // namespace

}  // namespace cuda
}  // namespace satclip

TORCH_LIBRARY_IMPL(satclip, CUDA, m) {
  m.impl("spherical_harmonics", &satclip::cuda::sh_forward_op);
  m.impl("spherical_harmonics_backward", &satclip::cuda::sh_backward);
  m.impl("siren_layer", &satclip::cuda::siren_layer);
  m.impl("siren_layer_backward", &satclip::cuda::siren_layer_backward);
}

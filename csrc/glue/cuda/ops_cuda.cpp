// ops_cuda.cpp -- glue for the CUDA SH and SIREN-layer kernels: checks, device guard, allocation,
// launch checks on torch's current stream, and their registrations under the CUDA dispatch key.
// The first layer from coordinates: first_layer_cuda.cpp; the encoder forward: encoder_cuda.cpp;
// what they share: cuda_glue.h. LibTorch's stable ABI only (../stable_tensor.h).
#include <torch/csrc/inductor/aoti_torch/generated/c_shim_cuda.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "../../common/sh_math.h"
#include "../../cuda/quantize_int8.h"
#include "../../cuda/siren_epilogue.h"
#include "../../cuda/spherical_harmonics.h"
#include "cuda_glue.h"

namespace satclip {
namespace cuda {

namespace {

// A device copy of host values that goes neither through the current (perhaps captured) stream
// nor through the caching allocator: raw cudaMalloc + a copy on a private stream, with the
// thread's capture mode relaxed meanwhile. So the first call of an op may happen inside CUDA graph
// capture (a pageable copy on the capturing stream would fail it), and the cached tables never
// belong to a graph's private memory pool. The tensor frees the memory with cudaFree.
template <typename T>
Tensor upload_outside_capture(const std::vector<T>& h, ScalarType dtype, const Device& device) {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  SATCLIP_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  void* ptr = nullptr;
  cudaStream_t side = nullptr;
  const size_t bytes = h.size() * sizeof(T);
  cudaError_t err = cudaMalloc(&ptr, bytes);
  if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking);
  if (err == cudaSuccess) err = cudaMemcpyAsync(ptr, h.data(), bytes, cudaMemcpyHostToDevice, side);
  if (err == cudaSuccess) err = cudaStreamSynchronize(side);
  if (side != nullptr) cudaStreamDestroy(side);
  cudaThreadExchangeStreamCaptureMode(&mode);  // back to the caller's mode
  if (err != cudaSuccess && ptr != nullptr) cudaFree(ptr);
  SATCLIP_CUDA_CHECK(err);
  const std::vector<int64_t> size{static_cast<int64_t>(h.size())}, stride{1};
  return torch::stable::from_blob(ptr, size, stride, device, dtype, [](void* p) { cudaFree(p); });
}

}  // namespace

const ShTables& sh_tables(int64_t L, ScalarType dtype, const Tensor& like) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int, int>, ShTables> cache;
  std::lock_guard<std::mutex> lock(mu);
  const Device device = like.device();
  const auto key = std::make_tuple(L, static_cast<int>(dtype), static_cast<int>(device.index()));
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const size_t nt = static_cast<size_t>(std::max<int64_t>(L * (L + 1) / 2, 1));
  ShTables t;
  dispatch_floating(dtype, "satclip: SH tables", [&](auto zero) {
    using scalar_t = decltype(zero);
    std::vector<scalar_t> a(nt), b(nt), s(static_cast<size_t>(std::max<int64_t>(L, 1)));
    kernels::sh_coefficients<scalar_t>(static_cast<int>(L), a.data(), b.data(), s.data());
    t = ShTables{upload_outside_capture(a, dtype, device), upload_outside_capture(b, dtype, device),
                 upload_outside_capture(s, dtype, device)};
  });
  return cache.emplace(key, std::move(t)).first->second;
}

void check_cuda_degree(int64_t L, const char* op) {
  check_degree(L, op);
  SATCLIP_CHECK(L <= kernels::kShCudaMaxL, op, ": the CUDA kernels support legendre_polys <= ", kernels::kShCudaMaxL,
                ", got ", L, " (use the CPU for higher degrees)");
}

Tensor sh_forward(const Tensor& lonlat, int64_t L) {
  const char* op = "satclip::spherical_harmonics";
  check_lonlat(lonlat, op, DeviceType::CUDA);
  check_cuda_degree(L, op);
  const DeviceGuard guard(lonlat);
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, L * L}, lonlat);
  if (n == 0 || L == 0) return out;
  const ShTables& t = sh_tables(L, lonlat.scalar_type(), lonlat);
  const cudaStream_t stream = stream_of(lonlat);
  dispatch_floating(lonlat.scalar_type(), op, [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CUDA_CHECK(kernels::launch_sh_fwd<scalar_t>(
        lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
        t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(), t.sect.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), stream));
  });
  return out;
}

void sine_epilogue(Tensor& y, const std::optional<Tensor>& m, double w0, Tensor* c) {
  const cudaStream_t stream = stream_of(y);
  dispatch_floating(y.scalar_type(), "satclip::siren_layer", [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CUDA_CHECK(kernels::launch_siren_epilogue<scalar_t>(
        y.mutable_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m), static_cast<scalar_t>(w0), y.numel(),
        c != nullptr ? c->mutable_data_ptr<scalar_t>() : nullptr, stream));
  });
}

Tensor siren_layer_exact(const Tensor& x, const Tensor& weight, const Tensor& bias, double w0) {
  // the result in the bias's dtype: x's own, or float32 for the float16 mode's half operands
  Tensor y = empty_like_shape({x.size(0), weight.size(0)}, bias);
  addmm_into(y, bias, x, weight, Math::kExact);
  sine_epilogue(y, std::nullopt, w0, nullptr);
  return y;
}

// The GEMM of a training step is torch's (its TF32 setting applies, as to any nn.Linear).
std::tuple<Tensor, Tensor> siren_layer(const Tensor& x, const Tensor& weight, const Tensor& bias, double w0,
                                       std::optional<Tensor> mask, bool save_cos) {
  const char* op = "satclip::siren_layer";
  check_linear(x, weight, bias, op);
  const DeviceGuard guard(x);
  const int64_t n = x.size(0), h = weight.size(0);
  const std::optional<Tensor> m = checked_mask(mask, x, n, h, op);
  Tensor y = empty_like_shape({n, h}, x);
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cuda_addmm_out(y.get(), bias.get(), x.get(), transposed(weight).get(), 1.0, 1.0));
  Tensor c = save_cos ? empty_like_shape({n, h}, x) : empty_like_shape({0}, x);
  sine_epilogue(y, m, w0, save_cos ? &c : nullptr);
  return {y, c};
}

namespace {

Tensor mm(const Tensor& a, const Tensor& b) {
  Tensor out = empty_like_shape({a.size(0), b.size(1)}, a);
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cuda_mm_out(out.get(), a.get(), b.get()));
  return out;
}

Tensor sh_backward(const Tensor& grad, const Tensor& lonlat, int64_t L) {
  const char* op = "satclip::spherical_harmonics_backward";
  check_lonlat(lonlat, op, DeviceType::CUDA);
  check_cuda_degree(L, op);
  check_sh_grad(grad, lonlat, L, op);
  const DeviceGuard guard(lonlat);
  const int64_t n = lonlat.size(0);
  const Tensor g = grad.stride(1) == 1 ? grad : torch::stable::contiguous(grad);
  Tensor out = empty_like_shape({n, 2}, lonlat);
  if (n == 0) return out;
  const ShTables& t = sh_tables(L, lonlat.scalar_type(), lonlat);
  const cudaStream_t stream = stream_of(lonlat);
  dispatch_floating(lonlat.scalar_type(), op, [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CUDA_CHECK(kernels::launch_sh_bwd<scalar_t>(
        g.const_data_ptr<scalar_t>(), g.stride(0), lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0),
        lonlat.stride(1), n, static_cast<int>(L), t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(),
        t.sect.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), stream));
  });
  return out;
}

std::tuple<Tensor, Tensor, Tensor> siren_layer_backward(const Tensor& grad_y, const Tensor& cos, const Tensor& x,
                                                        const Tensor& weight, double w0, std::optional<Tensor> mask,
                                                        bool need_grad_x) {
  const char* op = "satclip::siren_layer_backward";
  check_siren_backward(grad_y, cos, x, weight, op);
  const DeviceGuard guard(x);
  const std::optional<Tensor> m = checked_mask(mask, x, x.size(0), weight.size(0), op);
  const Tensor gy = torch::stable::contiguous(grad_y), cc = torch::stable::contiguous(cos);
  Tensor gz = torch::stable::empty_like(gy);
  const cudaStream_t stream = stream_of(x);
  dispatch_floating(x.scalar_type(), op, [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CUDA_CHECK(kernels::launch_siren_grad_epilogue<scalar_t>(
        gy.const_data_ptr<scalar_t>(), cc.const_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
        static_cast<scalar_t>(w0), gz.numel(), gz.mutable_data_ptr<scalar_t>(), stream));
  });
  const std::vector<int64_t> dim0{0};
  return {need_grad_x ? mm(gz, weight) : empty_like_shape({0}, x), mm(transposed(gz), x),
          torch::stable::sum(gz, torch::headeronly::IntHeaderOnlyArrayRef(dim0))};
}

// The registered op: SH, then the optional per-feature factors in one more pass (on the GPU the
// SH kernel is bound by its output's bandwidth; storing the factor inside the kernel is left for
// a GPU session to measure).
Tensor sh_forward_op(const Tensor& lonlat, int64_t L, std::optional<Tensor> scale) {
  const std::optional<Tensor> s = check_sh_scale(scale, lonlat, L, "satclip::spherical_harmonics");
  Tensor y = sh_forward(lonlat, L);
  if (!s.has_value()) return y;
  const DeviceGuard guard(lonlat);
  AtenTensorHandle scaled = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cuda_mul_Tensor(y.get(), s->get(), &scaled));
  return Tensor(scaled);
}

// The int8 output's quantisation on the device (threads: a CPU argument, unused here).
std::tuple<Tensor, Tensor> quantize_int8(const Tensor& emb, int64_t threads) {
  const char* op = "satclip::quantize_int8";
  check_quantize_input(emb, op, DeviceType::CUDA);
  SATCLIP_CHECK(threads >= 0, op, ": threads must be >= 0 (0: torch's count), got ", threads);
  const DeviceGuard guard(emb);
  const Tensor x = emb.size(1) <= 1 || emb.stride(1) == 1 ? emb : torch::stable::contiguous(emb);
  const int64_t n = x.size(0), d = x.size(1);
  Tensor codes = empty({n, d}, ScalarType::Char, x.device());
  Tensor scale = empty({n}, ScalarType::Float, x.device());
  SATCLIP_CUDA_CHECK(kernels::launch_quantize_int8(x.const_data_ptr<float>(), n, d, x.stride(0),
                                                   static_cast<int8_t*>(codes.mutable_data_ptr()),
                                                   scale.mutable_data_ptr<float>(), stream_of(x)));
  return {codes, scale};
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

STABLE_TORCH_LIBRARY_IMPL(satclip, CUDA, m) {
  m.impl("spherical_harmonics", TORCH_BOX(&satclip::cuda::sh_forward_op));
  m.impl("spherical_harmonics_backward", TORCH_BOX(&satclip::cuda::sh_backward));
  m.impl("siren_layer", TORCH_BOX(&satclip::cuda::siren_layer));
  m.impl("siren_layer_backward", TORCH_BOX(&satclip::cuda::siren_layer_backward));
  m.impl("quantize_int8", TORCH_BOX(&satclip::cuda::quantize_int8));
}

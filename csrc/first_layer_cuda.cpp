// first_layer_cuda.cpp -- the first sine layer straight from the coordinates on CUDA: the
// variants the encoder chooses between, and satclip::sh_siren_layer.
//
// float32 / float64: the SIMT kernel of cuda/sh_siren_tile.h. bf16: the tensor-core kernel of
// cuda/bf16_tile.h (sm_80+). Both keep the SH features in shared memory and cover
// 1 <= L <= 64; other degrees (and bf16 before sm_80) compose the SH kernel with cuBLAS.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "cuda/sh_siren_layer.h"
#include "cuda/sh_siren_tile.h"
#include "cuda/spherical_harmonics.h"
#include "cuda_glue.h"
#include "first_layer_cuda.h"
#include "hidden_layer_cuda.h"
#include "op_checks.h"

namespace satclip {
namespace cuda {
namespace {

bool on_chip_degree(int64_t L) { return L >= 1 && L <= kernels::fused::kMaxL; }

}  // namespace

bool device_has_bf16_mma(const at::Tensor& t) {
  int major = 0;
  SATCLIP_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, t.device().index()));
  return major >= 8;
}

bool first_layer_fusable(int64_t L, bool bf16, const at::Tensor& like) {
  if (!on_chip_degree(L) || (bf16 && !device_has_bf16_mma(like))) return false;
  // e.g. float L = 51-64 needs more shared memory than sm_86/89 chips have: SH + cuBLAS there
  size_t limit = 0;
  SATCLIP_CUDA_CHECK(kernels::device_smem_optin(like.device().index(), &limit));
  const int elem = bf16 ? 2 : static_cast<int>(like.element_size());
  return kernels::sh_siren_smem_bytes(static_cast<int>(L), elem) <= limit;
}

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

at::Tensor sh_tf32(const at::Tensor& lonlat, int64_t L) {
  const int64_t n = lonlat.size(0);
  at::Tensor h = at::empty({n, L * L}, lonlat.options());
  const ShTables& t = sh_tables(L, at::kFloat, lonlat.device());
  SATCLIP_CUDA_CHECK(kernels::launch_sh_fwd_tf32(lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1),
                                                 n, static_cast<int>(L), t.a.const_data_ptr<float>(),
                                                 t.b.const_data_ptr<float>(), t.sect.const_data_ptr<float>(),
                                                 h.mutable_data_ptr<float>(), stream_of(lonlat)));
  return h;
}

at::Tensor first_layer_bf16_cublas(const at::Tensor& lonlat, int64_t L, const at::Tensor& w16, const at::Tensor& bias,
                                   double w0) {
  return hidden_bf16_cublas(sh_bf16(lonlat, L), w16, bias, w0);
}

namespace {

at::Tensor sh_siren_layer(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight, const at::Tensor& bias,
                          double w0, c10::string_view precision) {
  const bool bf16 = check_sh_siren_layer(lonlat, L, weight, bias, precision, c10::DeviceType::CUDA);
  check_cuda_degree(L, "satclip::sh_siren_layer");
  const c10::cuda::CUDAGuard guard(lonlat.device());
  if (!bf16) {
    return first_layer_fusable(L, false, lonlat) ? first_layer_on_chip(lonlat, L, weight, bias, w0)
                                                 : first_layer_cublas(lonlat, L, weight, bias, w0);
  }
  const at::Tensor w16 = weight.to(at::kBFloat16);
  if (first_layer_fusable(L, true, lonlat)) {
    return first_layer_bf16_on_chip(lonlat, L, w16.t().contiguous(), bias, w0);
  }
  return first_layer_bf16_cublas(lonlat, L, w16, bias, w0);
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

TORCH_LIBRARY_IMPL(satclip, CUDA, m) { m.impl("sh_siren_layer", &satclip::cuda::sh_siren_layer); }

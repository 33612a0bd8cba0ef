// first_layer_cuda.cpp -- the first sine layer straight from the coordinates on CUDA: the
// variants the encoder chooses between, and satclip::sh_siren_layer.
//
// float32 / float64: the SIMT kernel of cuda/sh_siren_tile.h. bf16: the tensor-core kernel of
// cuda/bf16_tile.h (sm_80+). Both keep the SH features in shared memory and cover
// 1 <= L <= 64; other degrees (and bf16 before sm_80) compose the SH kernel with cuBLAS.
#include "first_layer_cuda.h"

#include <tuple>

#include "../../cuda/sh_siren_layer.h"
#include "../../cuda/sh_siren_tile.h"
#include "../../cuda/spherical_harmonics.h"
#include "cuda_glue.h"
#include "hidden_layer_cuda.h"

namespace satclip {
namespace cuda {
namespace {

bool on_chip_degree(int64_t L) { return L >= 1 && L <= kernels::fused::kMaxL; }

Tensor empty_bf16(std::vector<int64_t> size, const Tensor& like) {
  return empty(std::move(size), ScalarType::BFloat16, like.device());
}

}  // namespace

bool device_has_bf16_mma(const Tensor& t) {
  int major = 0;
  SATCLIP_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, t.get_device_index()));
  return major >= 8;
}

bool first_layer_fusable(int64_t L, bool bf16, const Tensor& like) {
  if (!on_chip_degree(L) || (bf16 && !device_has_bf16_mma(like))) return false;
  // e.g. float L = 51-64 needs more shared memory than sm_86/89 chips have: SH + cuBLAS there
  size_t limit = 0;
  SATCLIP_CUDA_CHECK(kernels::device_smem_optin(like.get_device_index(), &limit));
  const int elem = bf16 ? 2 : static_cast<int>(like.element_size());
  return kernels::sh_siren_smem_bytes(static_cast<int>(L), elem) <= limit;
}

Tensor first_layer_on_chip(const Tensor& lonlat, int64_t L, const Tensor& weight, const Tensor& bias, double w0) {
  const int64_t n = lonlat.size(0), h = weight.size(0);
  Tensor out = empty_like_shape({n, h}, lonlat);
  if (n == 0 || h == 0) return out;
  const ShTables& t = sh_tables(L, lonlat.scalar_type(), lonlat);
  const Tensor wt = torch::stable::contiguous(transposed(weight));  // [L*L, H]: coalesced band loads
  const Tensor b = torch::stable::contiguous(bias);
  dispatch_floating(lonlat.scalar_type(), "satclip::sh_siren_layer", [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CUDA_CHECK(kernels::launch_sh_siren<scalar_t>(
        lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
        t.a.const_data_ptr<scalar_t>(), t.b.const_data_ptr<scalar_t>(), t.sect.const_data_ptr<scalar_t>(),
        wt.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), static_cast<int>(h),
        static_cast<scalar_t>(w0), out.mutable_data_ptr<scalar_t>(), stream_of(lonlat)));
  });
  return out;
}

Tensor first_layer_cublas(const Tensor& lonlat, int64_t L, const Tensor& weight, const Tensor& bias, double w0) {
  return siren_layer_exact(sh_forward(lonlat, L), weight, bias, w0);
}

Tensor first_layer_bf16_on_chip(const Tensor& lonlat, int64_t L, const Tensor& wt16, const Tensor& bias, double w0) {
  const int64_t n = lonlat.size(0), h = wt16.size(1);
  Tensor out = empty_bf16({n, h}, lonlat);
  if (n == 0 || h == 0) return out;
  const ShTables& t = sh_tables(L, ScalarType::Float, lonlat);
  const Tensor b = torch::stable::contiguous(bias);
  SATCLIP_CUDA_CHECK(kernels::launch_sh_siren_bf16(
      lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
      t.a.const_data_ptr<float>(), t.b.const_data_ptr<float>(), t.sect.const_data_ptr<float>(), bf16_cptr(wt16),
      b.const_data_ptr<float>(), static_cast<int>(h), static_cast<float>(w0), bf16_ptr(out), stream_of(lonlat)));
  return out;
}

Tensor sh_bf16(const Tensor& lonlat, int64_t L) {
  const int64_t n = lonlat.size(0);
  Tensor h = empty_bf16({n, L * L}, lonlat);
  const ShTables& t = sh_tables(L, ScalarType::Float, lonlat);
  SATCLIP_CUDA_CHECK(kernels::launch_sh_fwd_bf16(lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1),
                                                 n, static_cast<int>(L), t.a.const_data_ptr<float>(),
                                                 t.b.const_data_ptr<float>(), t.sect.const_data_ptr<float>(),
                                                 bf16_ptr(h), stream_of(lonlat)));
  return h;
}

Tensor sh_tf32(const Tensor& lonlat, int64_t L) {
  const int64_t n = lonlat.size(0);
  Tensor h = empty_like_shape({n, L * L}, lonlat);
  const ShTables& t = sh_tables(L, ScalarType::Float, lonlat);
  SATCLIP_CUDA_CHECK(kernels::launch_sh_fwd_tf32(lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1),
                                                 n, static_cast<int>(L), t.a.const_data_ptr<float>(),
                                                 t.b.const_data_ptr<float>(), t.sect.const_data_ptr<float>(),
                                                 h.mutable_data_ptr<float>(), stream_of(lonlat)));
  return h;
}

Tensor first_layer_bf16_cublas(const Tensor& lonlat, int64_t L, const Tensor& w16, const Tensor& bias, double w0) {
  return hidden_bf16_cublas(sh_bf16(lonlat, L), w16, bias, w0);
}

namespace {

Tensor sh_siren_layer(const Tensor& lonlat, int64_t L, const Tensor& weight, const Tensor& bias, double w0,
                      std::string_view precision) {
  const bool bf16 = check_sh_siren_layer(lonlat, L, weight, bias, precision, DeviceType::CUDA);
  check_cuda_degree(L, "satclip::sh_siren_layer");
  const DeviceGuard guard(lonlat);
  if (!bf16) {
    return first_layer_fusable(L, false, lonlat) ? first_layer_on_chip(lonlat, L, weight, bias, w0)
                                                 : first_layer_cublas(lonlat, L, weight, bias, w0);
  }
  const Tensor w16 = torch::stable::to(weight, ScalarType::BFloat16);
  if (first_layer_fusable(L, true, lonlat)) {
    return first_layer_bf16_on_chip(lonlat, L, torch::stable::contiguous(transposed(w16)), bias, w0);
  }
  return first_layer_bf16_cublas(lonlat, L, w16, bias, w0);
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

STABLE_TORCH_LIBRARY_IMPL(satclip, CUDA, m) { m.impl("sh_siren_layer", TORCH_BOX(&satclip::cuda::sh_siren_layer)); }

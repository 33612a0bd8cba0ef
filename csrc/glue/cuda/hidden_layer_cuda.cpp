// hidden_layer_cuda.cpp -- a hidden sine layer of the bf16 mode on CUDA, both variants: the
// tensor-core kernel with the sine in its epilogue, and cuBLAS + one elementwise pass.
#include "hidden_layer_cuda.h"

#include <cstdint>

#include "../../cuda/siren_bf16.h"
#include "../../cuda/siren_epilogue.h"
#include "cuda_glue.h"
#include "first_layer_cuda.h"

namespace satclip {
namespace cuda {

// The kernel reads X with 16-byte loads: every row must start on a 16-byte boundary, so the
// base pointer must be 16-byte aligned and the row length (K bf16 values) a multiple of 8.
// A contiguous tensor is required too (hidden_bf16_fused would otherwise copy it).
bool hidden_bf16_fusable(const Tensor& h) {
  const int64_t K = h.size(1);
  return K % 8 == 0 && h.is_contiguous() && reinterpret_cast<uintptr_t>(h.const_data_ptr()) % 16 == 0 &&
         device_has_bf16_mma(h);
}

Tensor hidden_bf16_fused(const Tensor& h, const Tensor& wt16, const Tensor& bias, double w0) {
  const int64_t n = h.size(0), k = h.size(1), width = wt16.size(1);
  SATCLIP_CHECK(hidden_bf16_fusable(h), "satclip: the bf16 hidden-layer kernel needs a contiguous, 16-byte aligned "
                "input with a multiple of 8 features");
  Tensor out = empty_like_shape({n, width}, h);
  const Tensor b = torch::stable::contiguous(bias);
  SATCLIP_CUDA_CHECK(kernels::launch_siren_bf16(bf16_cptr(h), n, k, bf16_cptr(wt16), b.const_data_ptr<float>(),
                                                static_cast<int>(width), static_cast<float>(w0), bf16_ptr(out),
                                                stream_of(h)));
  return out;
}

Tensor sine_bf16(const Tensor& z, const Tensor& bias, double w0) {
  Tensor h = empty({z.size(0), z.size(1)}, ScalarType::BFloat16, z.device());
  const Tensor b = torch::stable::contiguous(bias);
  SATCLIP_CUDA_CHECK(kernels::launch_bias_sine_bf16(z.const_data_ptr<float>(), b.const_data_ptr<float>(),
                                                    static_cast<float>(w0), z.size(0), z.size(1), bf16_ptr(h),
                                                    stream_of(z)));
  return h;
}

void sine_tf32_(Tensor& z, double w0) {
  SATCLIP_CUDA_CHECK(kernels::launch_sine_tf32(z.mutable_data_ptr<float>(), static_cast<float>(w0), z.numel(),
                                               stream_of(z)));
}

// cuBLAS through this library's handle: bf16 x bf16 products summed in float32.
Tensor hidden_bf16_cublas(const Tensor& h, const Tensor& w16, const Tensor& bias, double w0) {
  Tensor z = empty({h.size(0), w16.size(0)}, ScalarType::Float, h.device());
  gemm_xwt(z, h, w16, false, Math::kExact);
  return sine_bf16(z, bias, w0);
}

}  // namespace cuda
}  // namespace satclip

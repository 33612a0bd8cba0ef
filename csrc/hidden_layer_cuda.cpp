// hidden_layer_cuda.cpp -- a hidden sine layer of the bf16 mode on CUDA, both variants: the
// tensor-core kernel with the sine in its epilogue, and cuBLAS + one elementwise pass.
#include "hidden_layer_cuda.h"

#include <cstdint>

#include "cuda/siren_bf16.h"
#include "cuda/siren_epilogue.h"
#include "cuda_glue.h"
#include "first_layer_cuda.h"

namespace satclip {
namespace cuda {

// The kernel reads X with 16-byte loads: every row must start on a 16-byte boundary, so the
// base pointer must be 16-byte aligned and the row length (K bf16 values) a multiple of 8.
// A contiguous tensor is required too (hidden_bf16_fused would otherwise copy it).
bool hidden_bf16_fusable(const at::Tensor& h) {
  const int64_t K = h.size(1);
  return K % 8 == 0 && h.is_contiguous() && reinterpret_cast<uintptr_t>(h.const_data_ptr()) % 16 == 0 &&
         device_has_bf16_mma(h);
}

at::Tensor hidden_bf16_fused(const at::Tensor& h, const at::Tensor& wt16, const at::Tensor& bias, double w0) {
  const int64_t n = h.size(0), k = h.size(1), width = wt16.size(1);
  at::Tensor out = at::empty({n, width}, h.options());
  TORCH_CHECK(hidden_bf16_fusable(h), "satclip: the bf16 hidden-layer kernel needs a contiguous, 16-byte aligned "
              "input with a multiple of 8 features");
  const at::Tensor& x = h;
  const at::Tensor b = bias.contiguous();
  SATCLIP_CUDA_CHECK(kernels::launch_siren_bf16(bf16_ptr(x), n, k, bf16_ptr(wt16), b.const_data_ptr<float>(),
                                                static_cast<int>(width), static_cast<float>(w0), bf16_ptr(out),
                                                stream_of(h)));
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

void sine_tf32_(at::Tensor& z, double w0) {
  SATCLIP_CUDA_CHECK(kernels::launch_sine_tf32(z.mutable_data_ptr<float>(), static_cast<float>(w0), z.numel(),
                                               stream_of(z)));
}

at::Tensor hidden_bf16_cublas(const at::Tensor& h, const at::Tensor& w16, const at::Tensor& bias, double w0) {
#ifdef SATCLIP_HAS_MM_OUT_DTYPE
  return sine_bf16(at::mm(h, w16.t(), at::kFloat), bias, w0);
#else
  // No bf16 x bf16 -> float32 GEMM in this torch: the same products of bf16 values in float32.
  return sine_bf16(at::mm(h.to(at::kFloat), w16.to(at::kFloat).t()), bias, w0);
#endif
}

}  // namespace cuda
}  // namespace satclip

// hidden_layer_cuda.cpp -- a hidden sine layer of the bf16 mode on CUDA, both variants: the
// tensor-core kernel with the sine in its epilogue, and cuBLAS + one elementwise pass.
#include "hidden_layer_cuda.h"

#include "cuda/siren_bf16.h"
#include "cuda/siren_epilogue.h"
#include "cuda_glue.h"
#include "first_layer_cuda.h"

namespace satclip {
namespace cuda {

bool hidden_bf16_fusable(int64_t K, const at::Tensor& like) { return K % 8 == 0 && device_has_bf16_mma(like); }

at::Tensor hidden_bf16_fused(const at::Tensor& h, const at::Tensor& wt16, const at::Tensor& bias, double w0) {
  const int64_t n = h.size(0), k = h.size(1), width = wt16.size(1);
  at::Tensor out = at::empty({n, width}, h.options());
  const at::Tensor x = h.contiguous(), b = bias.contiguous();
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

// cuda_glue.h -- what the CUDA glue files share (ops_cuda.cpp, first_layer_cuda.cpp,
// encoder_cuda.cpp): the launch check, the SH recurrence tables on the device, and the SH and
// SIREN-layer ops that the first layer and the encoder compose.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>

#include <optional>
#include <tuple>

#define SATCLIP_CUDA_CHECK(expr)                                                                 \
  do {                                                                                           \
    const cudaError_t err_ = (expr);                                                             \
    TORCH_CHECK(err_ == cudaSuccess, "satclip CUDA kernel failed: ", cudaGetErrorString(err_)); \
  } while (0)

namespace satclip {
namespace cuda {

// Recurrence tables for (L, dtype, device), computed once on the host in double precision by
// sh_math.h and kept on the device (a few KB at L = 40, 8 MB at L = 1024).
struct ShTables {
  at::Tensor a, b, sect;
};
const ShTables& sh_tables(int64_t L, at::ScalarType dtype, const c10::Device& device);

// The CUDA kernels' degree limit, in an error naming `op`.
void check_cuda_degree(int64_t L, const char* op);

inline cudaStream_t stream_of(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

inline __nv_bfloat16* bf16_ptr(at::Tensor& t) {
  return reinterpret_cast<__nv_bfloat16*>(t.mutable_data_ptr<at::BFloat16>());
}
inline const __nv_bfloat16* bf16_ptr(const at::Tensor& t) {
  return reinterpret_cast<const __nv_bfloat16*>(t.const_data_ptr<at::BFloat16>());
}

// The ops of ops_cuda.cpp (checked, device-guarded).
at::Tensor sh_forward(const at::Tensor& lonlat, int64_t L);
// In place on the pre-activation y = x W^T + b: mask, w0, sine (and the cosine if c is given).
void sine_epilogue(at::Tensor& y, const at::Tensor& m, double w0, at::Tensor* c);
// GEMM through ATen (cuBLAS), then one elementwise pass: mask, w0, sine (and cosine if asked).
std::tuple<at::Tensor, at::Tensor> siren_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                               double w0, const std::optional<at::Tensor>& mask, bool save_cos);

}  // namespace cuda
}  // namespace satclip

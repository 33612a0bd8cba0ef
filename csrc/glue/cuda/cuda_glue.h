// cuda_glue.h -- what the CUDA glue files share (ops_cuda.cpp, first_layer_cuda.cpp,
// hidden_layer_cuda.cpp, encoder_cuda.cpp): the launch check, the current stream and a device
// guard through the stable C shim, the SH recurrence tables on the device, GEMMs through this
// library's own cuBLAS handle, and the SH and SIREN-layer ops that the encoder composes.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <optional>
#include <tuple>

#include "../precision.h"

#define SATCLIP_CUDA_CHECK(expr)                                                                   \
  do {                                                                                             \
    const cudaError_t err_ = (expr);                                                               \
    SATCLIP_CHECK(err_ == cudaSuccess, "satclip CUDA kernel failed: ", cudaGetErrorString(err_)); \
  } while (0)

namespace satclip {
namespace cuda {

// The current stream of t's device (torch's, so the kernels order with torch's own work).
cudaStream_t stream_of(const Tensor& t);

// Makes t's device current for a scope (torch's CUDA guard through the shim).
class DeviceGuard {
 public:
  explicit DeviceGuard(const Tensor& t);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  void* handle_ = nullptr;
};

// Recurrence tables for (L, dtype, device), computed once on the host in double precision by
// sh_math.h and kept on the device (a few KB at L = 40, 8 MB at L = 1024).
struct ShTables {
  Tensor a, b, sect;
};
const ShTables& sh_tables(int64_t L, ScalarType dtype, const Tensor& like);

// The CUDA kernels' degree limit, in an error naming `op`.
void check_cuda_degree(int64_t L, const char* op);

inline __nv_bfloat16* bf16_ptr(const Tensor& t) { return static_cast<__nv_bfloat16*>(t.mutable_data_ptr()); }
inline const __nv_bfloat16* bf16_cptr(const Tensor& t) { return static_cast<const __nv_bfloat16*>(t.const_data_ptr()); }

// y = x W^T (+ y when accumulate): x [m, k], W [n, k], y [m, n], each with unit column stride.
// float32 / float64 operands with a result of their dtype, or bf16 / float16 operands with a
// float32 result (float32 sums, on tensor cores). The math is this library's choice, not torch's global TF32 setting:
// kExact (float32 products and sums), kTF32 (TF32 tensor cores on float32 operands).
enum class Math { kExact, kTF32 };
void gemm_xwt(Tensor& y, const Tensor& x, const Tensor& w, bool accumulate, Math math);
// y = x W^T + b (b [n] in y's dtype, broadcast over rows).
void addmm_into(Tensor& y, const Tensor& b, const Tensor& x, const Tensor& w, Math math);

// The ops of ops_cuda.cpp (checked, device-guarded).
Tensor sh_forward(const Tensor& lonlat, int64_t L);
// In place on the pre-activation y = x W^T + b: mask, w0, sine (and the cosine if c is given).
void sine_epilogue(Tensor& y, const std::optional<Tensor>& m, double w0, Tensor* c);
// sin(w0 (x W^T + b)) with exact GEMM math (this library's cuBLAS handle), for inference; the
// result has b's dtype (x's, or float32 when x and W are half: the float16 mode).
Tensor siren_layer_exact(const Tensor& x, const Tensor& weight, const Tensor& bias, double w0);
// GEMM (torch's, as any training step's), then one elementwise pass: mask, w0, sine (and cosine if asked).
std::tuple<Tensor, Tensor> siren_layer(const Tensor& x, const Tensor& weight, const Tensor& bias, double w0,
                                       std::optional<Tensor> mask, bool save_cos);

}  // namespace cuda
}  // namespace satclip

// siren_epilogue.h (CUDA) -- torch-free launchers for the SIREN layer's elementwise parts.
// z: [numel] pre-activation W x + b (from the GEMM), replaced in place by sin(w0 * z * mask);
// cos_out (nullable) receives cos of the same argument; mask (nullable) has z's layout.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace satclip {
namespace kernels {

template <typename T>
cudaError_t launch_siren_epilogue(T* z, const T* mask, T w0, int64_t numel, T* cos_out, cudaStream_t stream);

// bf16 precision mode: out[r, c] = bf16(sin(w0 * (z[r, c] + bias[c]))), z [rows, cols] float32
// row-major (the GEMM's float32 result), bias [cols]. The sine is float32 and the bf16 rounding
// (nearest even) is the next GEMM's operand rounding, so the output feeds that GEMM directly.
cudaError_t launch_bias_sine_bf16(const float* z, const float* bias, float w0, int64_t rows, int64_t cols,
                                  __nv_bfloat16* out, cudaStream_t stream);

// tf32 precision mode: z[i] = tf32(sin(w0 * z[i])) in place, z the GEMM's float32 result with
// the bias already added; the TF32 rounding (tf32_round.h) is the next GEMM's operand rounding.
cudaError_t launch_sine_tf32(float* z, float w0, int64_t numel, cudaStream_t stream);

// y[r, c] = bias[c] for r < rows, c < cols (y row-major with leading dimension ldy): the rows a
// GEMM with beta = 1 then adds x W^T to.
template <typename T>
cudaError_t launch_bias_rows(const T* bias, int64_t rows, int64_t cols, T* y, int64_t ldy, cudaStream_t stream);

// y[i] = x[i] rounded to TF32 (nearest even at 10 mantissa bits, tf32_round.h): the tf32 mode's
// weight operands.
cudaError_t launch_round_tf32(const float* x, float* y, int64_t numel, cudaStream_t stream);

// gz = gy * w0 * cos (* mask)
template <typename T>
cudaError_t launch_siren_grad_epilogue(const T* gy, const T* cos, const T* mask, T w0, int64_t numel, T* gz,
                                       cudaStream_t stream);

}  // namespace kernels
}  // namespace satclip

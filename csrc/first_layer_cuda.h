// first_layer_cuda.h -- the first sine layer from coordinates on CUDA (first_layer_cuda.cpp),
// for the encoder forward (encoder_cuda.cpp). Arguments are checked by the callers; tensors are
// on one CUDA device under a device guard. Output [N, H].
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace satclip {
namespace cuda {

// float32 / float64, 1 <= L <= 64: features in shared memory (cuda/sh_siren_tile.h).
at::Tensor first_layer_on_chip(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight, const at::Tensor& bias,
                               double w0);
// Any L: the SH kernel writes [N, L*L], cuBLAS multiplies, one pass applies the sine.
at::Tensor first_layer_cublas(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight, const at::Tensor& bias,
                              double w0);

// bf16 mode (float32 lonlat and bias; bf16 result). On chip: wt16 = W^T in bf16, [L*L, H],
// 1 <= L <= 64, sm_80+ (cuda/sh_siren_bf16_tile.h). cuBLAS: w16 = W in bf16, [H, L*L].
at::Tensor first_layer_bf16_on_chip(const at::Tensor& lonlat, int64_t L, const at::Tensor& wt16,
                                    const at::Tensor& bias, double w0);
at::Tensor first_layer_bf16_cublas(const at::Tensor& lonlat, int64_t L, const at::Tensor& w16, const at::Tensor& bias,
                                   double w0);
// SH of lonlat (float32) stored as bf16, [N, L*L].
at::Tensor sh_bf16(const at::Tensor& lonlat, int64_t L);
// bf16(sin(w0 * (z + bias))) of a float32 GEMM result z [rows, cols].
at::Tensor sine_bf16(const at::Tensor& z, const at::Tensor& bias, double w0);

// Whether the encoder runs its first layer on chip for points like `pts` (its first chunk):
// SATCLIP_CUDA_FIRST_LAYER=on-chip|cublas decides, or "auto" (default) times both variants
// once per (device, precision, dtype, L, width, rows) and keeps the faster. False where no
// on-chip kernel applies.
bool choose_on_chip(const at::Tensor& pts, int64_t L, int64_t width, const char* precision,
                    const std::function<void()>& on_chip, const std::function<void()>& cublas);

}  // namespace cuda
}  // namespace satclip

// first_layer_cuda.h -- the first sine layer from coordinates on CUDA (first_layer_cuda.cpp),
// for the encoder forward (encoder_cuda.cpp), which picks a variant with choose_fused.
// Arguments are checked by the callers; tensors are on one CUDA device under a device guard.
// Output [N, H].
#pragma once

#include "../stable_tensor.h"

namespace satclip {
namespace cuda {

// float32 / float64, 1 <= L <= 64: features in shared memory (cuda/sh_siren_tile.h).
Tensor first_layer_on_chip(const Tensor& lonlat, int64_t L, const Tensor& weight, const Tensor& bias,
                               double w0);
// Any L: the SH kernel writes [N, L*L], cuBLAS multiplies, one pass applies the sine.
Tensor first_layer_cublas(const Tensor& lonlat, int64_t L, const Tensor& weight, const Tensor& bias,
                              double w0);

// bf16 mode (float32 lonlat and bias; bf16 result). On chip: wt16 = W^T in bf16, [L*L, H],
// 1 <= L <= 64, sm_80+ (cuda/bf16_tile.h). cuBLAS: w16 = W in bf16, [H, L*L].
Tensor first_layer_bf16_on_chip(const Tensor& lonlat, int64_t L, const Tensor& wt16,
                                    const Tensor& bias, double w0);
Tensor first_layer_bf16_cublas(const Tensor& lonlat, int64_t L, const Tensor& w16, const Tensor& bias,
                                   double w0);
// SH of lonlat (float32) stored as bf16, [N, L*L].
Tensor sh_bf16(const Tensor& lonlat, int64_t L);
// SH in float32, TF32-rounded where stored (the tf32 mode's first operand).
Tensor sh_tf32(const Tensor& lonlat, int64_t L);

// Whether an on-chip first-layer kernel covers L (1..64), and in bf16 the device (sm_80+).
bool first_layer_fusable(int64_t L, bool bf16, const Tensor& like);
// Whether the device of `like` has bf16 tensor cores reachable by WMMA (sm_80+).
bool device_has_bf16_mma(const Tensor& like);

}  // namespace cuda
}  // namespace satclip

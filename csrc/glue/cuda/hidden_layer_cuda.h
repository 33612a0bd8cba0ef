// hidden_layer_cuda.h -- a hidden sine layer of the bf16 mode on CUDA (hidden_layer_cuda.cpp),
// for the encoder forward, which picks a variant with choose_fused. h: the previous layer's
// bf16 output [N, K], contiguous; bias float32 [H]; result bf16 [N, H] = bf16(sin(w0 * (h W^T + b))).
#pragma once

#include "../stable_tensor.h"

namespace satclip {
namespace cuda {

// Tensor cores with bias, w0 and sine in the epilogue (cuda/siren_bf16.cu); wt16 = W^T in bf16,
// [K, H] contiguous. Needs hidden_bf16_fusable.
Tensor hidden_bf16_fused(const Tensor& h, const Tensor& wt16, const Tensor& bias, double w0);
// cuBLAS (bf16 x bf16 -> float32), then sine_bf16; w16 = W in bf16, [H, K].
Tensor hidden_bf16_cublas(const Tensor& h, const Tensor& w16, const Tensor& bias, double w0);
bool hidden_bf16_fusable(const Tensor& h);

// bf16(sin(w0 * (z + bias))) of a float32 GEMM result z [rows, cols].
Tensor sine_bf16(const Tensor& z, const Tensor& bias, double w0);
// tf32 mode, in place on a contiguous float32 z = x W^T + b: tf32(sin(w0 z)), the next operand.
void sine_tf32_(Tensor& z, double w0);

}  // namespace cuda
}  // namespace satclip

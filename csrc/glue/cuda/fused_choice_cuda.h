// fused_choice_cuda.h -- whether the CUDA encoder runs a layer with one of this package's fused
// kernels or through cuBLAS (fused_choice_cuda.cpp).
#pragma once

#include "../stable_tensor.h"

#include <functional>
#include <string>

namespace satclip {
namespace cuda {

// SATCLIP_CUDA_FUSED=fused|cublas (or satclip::_cuda_fused) decides; "auto" (the default)
// runs both variants once on this input (after a warm-up run each), keeps the faster for
// (device, shape) and reports it through satclip::_cuda_fused(). `shape` names the layer
// and everything its speed depends on (kind, precision, dtype, L or K, width, rows). Call it
// only where the fused kernel applies.
// The row-count bucket a timed choice is keyed by: the next power of two (at least 1024).
int64_t choice_rows_bucket(int64_t rows);

// Whether to run the fused variant for this shape: the mode (SATCLIP_CUDA_FUSED, _cuda_fused)
// or, in "auto", the faster of one timed run each (once per device and shape key; at most
// kMaxChoices keys, past which cuBLAS is taken untimed; never timed inside graph capture).
constexpr size_t kMaxChoices = 256;
bool choose_fused(const Tensor& input, const std::string& shape, const std::function<void()>& fused,
                  const std::function<void()>& cublas);

}  // namespace cuda
}  // namespace satclip

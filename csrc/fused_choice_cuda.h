// fused_choice_cuda.h -- whether the CUDA encoder runs a layer with one of this package's fused
// kernels or through cuBLAS (fused_choice_cuda.cpp).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>

namespace satclip {
namespace cuda {

// SATCLIP_CUDA_FUSED=fused|cublas (or satclip::_cuda_fused) decides; "auto" (the default)
// runs both variants once on this input (after a warm-up run each), keeps the faster for
// (device, shape) and reports it through satclip::_cuda_fused(). `shape` names the layer
// and everything its speed depends on (kind, precision, dtype, L or K, width, rows). Call it
// only where the fused kernel applies.
bool choose_fused(const at::Tensor& input, const std::string& shape, const std::function<void()>& fused,
                  const std::function<void()>& cublas);

}  // namespace cuda
}  // namespace satclip

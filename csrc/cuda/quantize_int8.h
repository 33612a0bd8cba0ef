// quantize_int8.h (CUDA) -- torch-free launcher of the int8 output's quantisation
// (common/quantize_int8.h). emb: [n, d] float32 rows with row stride ld; codes: [n, d] int8;
// scale: [n] float32.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace satclip {
namespace kernels {

cudaError_t launch_quantize_int8(const float* emb, int64_t n, int64_t d, int64_t ld, int8_t* codes, float* scale,
                                 cudaStream_t stream);

}  // namespace kernels
}  // namespace satclip

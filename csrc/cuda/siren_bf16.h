// siren_bf16.h (CUDA) -- torch-free launcher of the bf16 tensor-core SIREN layer:
// out = bf16(sin(w0 * (x W^T + bias))), x bf16 [n, K] row-major (K a multiple of 8, 16-byte
// aligned rows), wt = W^T bf16 [K, H] row-major, bias float [H], out bf16 [n, H]. sm_80+;
// phases and tile in bf16_tile.h.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace satclip {
namespace kernels {

cudaError_t launch_siren_bf16(const __nv_bfloat16* x, int64_t n, int64_t K, const __nv_bfloat16* wt,
                              const float* bias, int H, float w0, __nv_bfloat16* out, cudaStream_t stream);

}  // namespace kernels
}  // namespace satclip

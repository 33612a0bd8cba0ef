// sh_siren_layer.h (CUDA) -- torch-free launcher of the fused "SH -> first SIREN layer" kernel.
// out[i, c] = sin(w0 * (Y(lonlat_i) . W[c, :] + bias[c])), Y the L*L real SH of ../common/sh_math.h.
// lonlat [N, 2] degrees with strides (s0, s1); wt = W^T, [L*L, H] row-major; bias [H];
// out [N, H] row-major; a, b, sect: the SH recurrence tables (device pointers). All device
// pointers, float or double. Supports 1 <= L <= fused::kMaxL (64); see sh_siren_tile.h.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace satclip {
namespace kernels {

template <typename T>
cudaError_t launch_sh_siren(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const T* a, const T* b,
                            const T* sect, const T* wt, const T* bias, int H, T w0, T* out, cudaStream_t stream);

// The bf16 precision mode on tensor cores (sm_80+): wt = W^T rounded to bf16, [L*L, H];
// out [N, H] bf16 (see bf16_tile.h). Same range of L.
cudaError_t launch_sh_siren_bf16(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* a,
                                 const float* b, const float* sect, const __nv_bfloat16* wt, const float* bias, int H,
                                 float w0, __nv_bfloat16* out, cudaStream_t stream);

// Bytes of dynamic shared memory the fused first layer needs at degree L (elem_bytes 4, 8, or 2
// for the bf16 kernel; bf16_tile.h) and the device's opt-in limit per block (queried once per
// device). A launch that needs more than the limit returns cudaErrorInvalidConfiguration; the
// glue checks first and takes SH + cuBLAS instead.
size_t sh_siren_smem_bytes(int L, int elem_bytes);

cudaError_t device_smem_optin(int device, size_t* bytes);

}  // namespace kernels
}  // namespace satclip

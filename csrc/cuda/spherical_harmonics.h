// spherical_harmonics.h (CUDA) -- torch-free launchers for the SH forward and backward kernels.
// Layouts as in ../common/sh_math.h: lonlat [N, 2] degrees with strides (s0, s1); Y [N, L*L] row-major,
// feature l*l + l + m. a, b: recurrence tables (triangular, L*(L+1)/2), sect: [L], all device
// pointers filled from sh_coefficients<T>() on the host. Supports L <= kShCudaMaxL.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace satclip {
namespace kernels {

constexpr int kShCudaMaxL = 1024;

template <typename T>
cudaError_t launch_sh_fwd(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const T* a,
                          const T* b, const T* sect, T* out, cudaStream_t stream);

// The same in float32, stored as bf16 (round to nearest even): the bf16 mode's first operand.
cudaError_t launch_sh_fwd_bf16(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* a,
                               const float* b, const float* sect, __nv_bfloat16* out, cudaStream_t stream);

// The same in float32, stored TF32-rounded (tf32_round.h): the tf32 mode's first operand.
cudaError_t launch_sh_fwd_tf32(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* a,
                               const float* b, const float* sect, float* out, cudaStream_t stream);

// grad: [N, L*L] with row stride g0 (feature stride 1); out: [N, 2] d/d(lon, lat), deg^-1.
template <typename T>
cudaError_t launch_sh_bwd(const T* grad, int64_t g0, const T* lonlat, int64_t s0, int64_t s1, int64_t n,
                          int L, const T* a, const T* b, const T* sect, T* out, cudaStream_t stream);

}  // namespace kernels
}  // namespace satclip

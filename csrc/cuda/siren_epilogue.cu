// siren_epilogue.cu -- the SIREN layer's elementwise passes on the GPU.
//
// What: y = sin(w0 * z * mask) (and cos of the same argument for the backward) over the
// GEMM output z, in place; and gz = gy * w0 * cos * mask for the backward.
// Launch geometry: grid-stride, 256 threads, one element per thread per step.
// Numerics: sincos() with full range reduction (exact for any argument, float32 and float64).
// The GEMM itself runs in cuBLAS (glue/cuda); fusing this pass into a
// tensor-core GEMM epilogue is the next step (see the README).
#include "siren_epilogue.h"

#include "tf32_round.h"

namespace satclip {
namespace kernels {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t numel) {
  const int64_t want = (numel + kThreads - 1) / kThreads;
  return static_cast<int>(want < 1 ? 1 : (want < 65535 * 4 ? want : 65535 * 4));
}

template <typename T>
__global__ void siren_epilogue_kernel(T* __restrict__ z, const T* __restrict__ mask, T w0, int64_t numel,
                                      T* __restrict__ cos_out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T arg = w0 * z[i] * (mask ? mask[i] : T(1));
    T s, c;
    sincos(arg, &s, &c);
    z[i] = s;
    if (cos_out) cos_out[i] = c;
  }
}

template <typename T>
__global__ void siren_grad_epilogue_kernel(const T* __restrict__ gy, const T* __restrict__ cos,
                                           const T* __restrict__ mask, T w0, int64_t numel, T* __restrict__ gz) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    gz[i] = gy[i] * w0 * cos[i] * (mask ? mask[i] : T(1));
  }
}

// One row per block-stride step, threads over columns: the bias index needs no division.
__global__ void bias_sine_bf16_kernel(const float* __restrict__ z, const float* __restrict__ bias, float w0,
                                      int64_t rows, int64_t cols, __nv_bfloat16* __restrict__ out) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* zr = z + r * cols;
    __nv_bfloat16* o = out + r * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = __float2bfloat16_rn(sinf(w0 * (zr[c] + bias[c])));
  }
}

__global__ void sine_tf32_kernel(float* __restrict__ z, float w0, int64_t numel) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    z[i] = round_tf32(sinf(w0 * z[i]));
  }
}

// y[r, c] = bias[c]: the bias rows a GEMM then accumulates onto (the glue's addmm).
template <typename T>
__global__ void bias_rows_kernel(const T* __restrict__ bias, int64_t rows, int64_t cols, T* __restrict__ y,
                                 int64_t ldy) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) y[r * ldy + c] = bias[c];
  }
}

__global__ void round_tf32_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t numel) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = round_tf32(x[i]);
  }
}

}  // namespace

template <typename T>
cudaError_t launch_bias_rows(const T* bias, int64_t rows, int64_t cols, T* y, int64_t ldy, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int blocks = static_cast<int>(rows < 65535 * 4 ? rows : 65535 * 4);
  bias_rows_kernel<T><<<blocks, kThreads, 0, stream>>>(bias, rows, cols, y, ldy);
  return cudaGetLastError();
}

cudaError_t launch_round_tf32(const float* x, float* y, int64_t numel, cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  round_tf32_kernel<<<blocks_for(numel), kThreads, 0, stream>>>(x, y, numel);
  return cudaGetLastError();
}

cudaError_t launch_sine_tf32(float* z, float w0, int64_t numel, cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  sine_tf32_kernel<<<blocks_for(numel), kThreads, 0, stream>>>(z, w0, numel);
  return cudaGetLastError();
}

cudaError_t launch_bias_sine_bf16(const float* z, const float* bias, float w0, int64_t rows, int64_t cols,
                                  __nv_bfloat16* out, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int blocks = static_cast<int>(rows < 65535 * 4 ? rows : 65535 * 4);
  bias_sine_bf16_kernel<<<blocks, kThreads, 0, stream>>>(z, bias, w0, rows, cols, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_siren_epilogue(T* z, const T* mask, T w0, int64_t numel, T* cos_out, cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  siren_epilogue_kernel<T><<<blocks_for(numel), kThreads, 0, stream>>>(z, mask, w0, numel, cos_out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_siren_grad_epilogue(const T* gy, const T* cos, const T* mask, T w0, int64_t numel, T* gz,
                                       cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  siren_grad_epilogue_kernel<T><<<blocks_for(numel), kThreads, 0, stream>>>(gy, cos, mask, w0, numel, gz);
  return cudaGetLastError();
}

#define SATCLIP_INSTANTIATE(T)                                                                             \
  template cudaError_t launch_siren_epilogue<T>(T*, const T*, T, int64_t, T*, cudaStream_t);               \
  template cudaError_t launch_siren_grad_epilogue<T>(const T*, const T*, const T*, T, int64_t, T*, cudaStream_t); \
  template cudaError_t launch_bias_rows<T>(const T*, int64_t, int64_t, T*, int64_t, cudaStream_t);
SATCLIP_INSTANTIATE(float)
SATCLIP_INSTANTIATE(double)
#undef SATCLIP_INSTANTIATE

}  // namespace kernels
}  // namespace satclip

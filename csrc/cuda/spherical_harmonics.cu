// spherical_harmonics.cu -- CUDA kernels for the real SH forward and backward w.r.t. (lon, lat).
//
// What: the math of ../common/sh_math.h (orthonormal real SH, feature l*l + l + m, seed scaling
// against underflow), evaluated on the GPU.
// Launch geometry: one warp per point (grid-stride over points), 256 threads per block; the
// per-lane steps are in sh_warp.h (also run lane by lane on the CPU in tests/ops/sim/).
// Lane `lane` owns the orders m = lane + 32 j (j < J, J = ceil(L / 32) rounded up to a
// compiled size) and runs their column recurrences in registers, degree by degree. At degree l
// the warp writes (forward) or reads (backward) the 2l+1 features of that degree, which are
// contiguous in the point's row, so global accesses are coalesced; there is no shared memory.
// Backward: reads grad_out once, recomputes Q in registers, takes Q_{l,m+-1} from the
// neighbouring lanes with shuffles, reduces across the warp; no [N, 2, L*L] tensor.
// Numerics: as the CPU kernels (same header), compute type = storage type.
#include "spherical_harmonics.h"
#include "tf32_round.h"

#include "../common/sh_math.h"
#include "sh_warp.h"

namespace satclip {
namespace kernels {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;

using warp::Lane;

// The shuffles behind sh_warp.h's Warp interface.
struct ShuffleWarp {
  template <typename T, int J>
  __device__ T down(const T (&q)[J], int j) const {
    return __shfl_down_sync(kFull, q[j], 1);
  }
  template <typename T, int J>
  __device__ T up(const T (&q)[J], int j) const {
    return __shfl_up_sync(kFull, q[j], 1);
  }
  template <typename T, int J>
  __device__ T from(const T (&q)[J], int j, int src) const {
    return __shfl_sync(kFull, q[j], src);
  }
};

// Out = T, or __nv_bfloat16 for the bf16 precision mode (computed in float32, rounded to
// nearest even when stored: the operand rounding of that mode, done where the value is made).
template <typename T, int J, typename Out>
__global__ void __launch_bounds__(kThreads) sh_fwd_kernel(const T* __restrict__ lonlat, int64_t s0, int64_t s1,
                                                          int64_t n, int L, const T* __restrict__ a,
                                                          const T* __restrict__ b, const T* __restrict__ sect,
                                                          Out* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warp_id = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t K = static_cast<int64_t>(L) * L;
  for (int64_t i = warp_id; i < n; i += nwarps) {
    Lane<T, J> s;
    warp::lane_init<T, J>(lane, lonlat[i * s0], lonlat[i * s0 + s1], L, sect, s);
    warp::lane_forward_factors<T, J>(lane, s);
    Out* row = out + i * K;
    for (int l = 0; l < L; ++l) warp::lane_forward_degree<T, J, Out>(lane, l, a, b, s, row);
  }
}

template <typename T, int J>
__global__ void __launch_bounds__(kThreads) sh_bwd_kernel(const T* __restrict__ grad, int64_t g0,
                                                          const T* __restrict__ lonlat, int64_t s0, int64_t s1,
                                                          int64_t n, int L, const T* __restrict__ a,
                                                          const T* __restrict__ b, const T* __restrict__ sect,
                                                          T* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warp_id = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t i = warp_id; i < n; i += nwarps) {
    Lane<T, J> s;
    warp::lane_init<T, J>(lane, lonlat[i * s0], lonlat[i * s0 + s1], L, sect, s);
    const T* g = grad + i * g0;
    T glon = 0, glat0 = 0, glatm = 0;
    for (int l = 0; l < L; ++l) {
      warp::lane_backward_advance<T, J>(lane, l, a, b, s);
      warp::lane_backward_accumulate<T, J>(ShuffleWarp{}, lane, l, s, g, glon, glat0, glatm);
    }
    for (int off = 16; off > 0; off >>= 1) {
      glon += __shfl_xor_sync(kFull, glon, off);
      glat0 += __shfl_xor_sync(kFull, glat0, off);
      glatm += __shfl_xor_sync(kFull, glatm, off);
    }
    if (lane == 0) warp::backward_finish<T>(glon, glat0, glatm, out + 2 * i);
  }
}

int grid_for(int64_t n) {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) {
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  }
  const int64_t warps_per_block = kThreads / 32;
  const int64_t want = (n + warps_per_block - 1) / warps_per_block;
  const int64_t cap = static_cast<int64_t>(sms) * 16;
  return static_cast<int>(want < 1 ? 1 : (want < cap ? want : cap));
}

// Calls f.template operator()<J>() with the smallest compiled J >= ceil(L / 32).
template <typename F>
cudaError_t with_lane_chunks(int L, F&& f) {
  if (L <= 32) return f.template operator()<1>();
  if (L <= 64) return f.template operator()<2>();
  if (L <= 128) return f.template operator()<4>();
  if (L <= 256) return f.template operator()<8>();
  if (L <= kShCudaMaxL) return f.template operator()<32>();
  return cudaErrorInvalidValue;
}

}  // namespace

template <typename T>
cudaError_t launch_sh_fwd(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const T* a,
                          const T* b, const T* sect, T* out, cudaStream_t stream) {
  if (n == 0 || L == 0) return cudaSuccess;
  return with_lane_chunks(L, [&]<int J>() {
    sh_fwd_kernel<T, J, T><<<grid_for(n), kThreads, 0, stream>>>(lonlat, s0, s1, n, L, a, b, sect, out);
    return cudaGetLastError();
  });
}

cudaError_t launch_sh_fwd_bf16(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* a,
                               const float* b, const float* sect, __nv_bfloat16* out, cudaStream_t stream) {
  if (n == 0 || L == 0) return cudaSuccess;
  return with_lane_chunks(L, [&]<int J>() {
    sh_fwd_kernel<float, J, __nv_bfloat16>
        <<<grid_for(n), kThreads, 0, stream>>>(lonlat, s0, s1, n, L, a, b, sect, out);
    return cudaGetLastError();
  });
}

cudaError_t launch_sh_fwd_tf32(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* a,
                               const float* b, const float* sect, float* out, cudaStream_t stream) {
  if (n == 0 || L == 0) return cudaSuccess;
  return with_lane_chunks(L, [&]<int J>() {
    sh_fwd_kernel<float, J, Tf32>
        <<<grid_for(n), kThreads, 0, stream>>>(lonlat, s0, s1, n, L, a, b, sect, reinterpret_cast<Tf32*>(out));
    return cudaGetLastError();
  });
}

template <typename T>
cudaError_t launch_sh_bwd(const T* grad, int64_t g0, const T* lonlat, int64_t s0, int64_t s1, int64_t n,
                          int L, const T* a, const T* b, const T* sect, T* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (L == 0) return cudaMemsetAsync(out, 0, sizeof(T) * 2 * n, stream);
  return with_lane_chunks(L, [&]<int J>() {
    sh_bwd_kernel<T, J><<<grid_for(n), kThreads, 0, stream>>>(grad, g0, lonlat, s0, s1, n, L, a, b, sect, out);
    return cudaGetLastError();
  });
}

#define SATCLIP_INSTANTIATE(T)                                                                       \
  template cudaError_t launch_sh_fwd<T>(const T*, int64_t, int64_t, int64_t, int, const T*, const T*, \
                                        const T*, T*, cudaStream_t);                                 \
  template cudaError_t launch_sh_bwd<T>(const T*, int64_t, const T*, int64_t, int64_t, int64_t, int,  \
                                        const T*, const T*, const T*, T*, cudaStream_t);
SATCLIP_INSTANTIATE(float)
SATCLIP_INSTANTIATE(double)
#undef SATCLIP_INSTANTIATE

}  // namespace kernels
}  // namespace satclip

// spherical_harmonics.cu -- CUDA kernels for the real SH forward and backward w.r.t. (lon, lat).
//
// What: the math of ../sh_math.h (orthonormal real SH, feature l*l + l + m, seed scaling
// against underflow), evaluated on the GPU.
// Launch geometry: one warp per point (grid-stride over points), 256 threads per block.
// Lane `lane` owns the orders m = lane + 32 j (j < J, J = ceil(L / 32) rounded up to a
// compiled size) and runs their column recurrences in registers, degree by degree. At degree l
// the warp writes (forward) or reads (backward) the 2l+1 features of that degree, which are
// contiguous in the point's row, so global accesses are coalesced; there is no shared memory.
// Backward: reads grad_out once, recomputes Q in registers, takes Q_{l,m+-1} from the
// neighbouring lanes with shuffles, reduces across the warp; no [N, 2, L*L] tensor.
// Numerics: as the CPU kernels (same header), compute type = storage type.
#include "spherical_harmonics.h"

#include "../sh_math.h"

namespace satclip {
namespace kernels {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;

// Seeds Q_mm (scaled) and cos/sin(m lon) for the lane's orders.
template <typename T, int J>
__device__ __forceinline__ void lane_seeds(T lon_deg, T lat_deg, int lane, int L, const T* sect, T& z,
                                           T (&seed)[J], T (&cm)[J], T (&sm)[J]) {
  T cl, sl, u;
  sh_angles<T>(lon_deg, lat_deg, cl, sl, z, u);
  constexpr T deg = static_cast<T>(0.017453292519943295);
  const T lon = remainder(lon_deg, static_cast<T>(360)) * deg;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int m = lane + 32 * j;
    T p = sect[0];
    const int top = m < L ? m : 0;
    for (int k = 1; k <= top; ++k) p *= sect[k] * u;
    seed[j] = p;
    sincos(static_cast<T>(m) * lon, &sm[j], &cm[j]);
  }
}

// Out = T, or __nv_bfloat16 for the bf16 precision mode (computed in float32, rounded to
// nearest even when stored: the operand rounding of that mode, done where the value is made).
template <typename T, int J, typename Out>
__global__ void __launch_bounds__(kThreads) sh_fwd_kernel(const T* __restrict__ lonlat, int64_t s0, int64_t s1,
                                                          int64_t n, int L, const T* __restrict__ a,
                                                          const T* __restrict__ b, const T* __restrict__ sect,
                                                          Out* __restrict__ out) {
  constexpr T sqrt2 = static_cast<T>(1.4142135623730951);
  const T down = ShScale<T>::down;
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t K = static_cast<int64_t>(L) * L;
  for (int64_t i = warp; i < n; i += nwarps) {
    T z, seed[J], cm[J], sm[J], p1[J], p2[J], fc[J], fs[J];
    lane_seeds<T, J>(lonlat[i * s0], lonlat[i * s0 + s1], lane, L, sect, z, seed, cm, sm);
#pragma unroll
    for (int j = 0; j < J; ++j) {
      const int m = lane + 32 * j;
      fc[j] = m == 0 ? down : sqrt2 * down * cm[j];
      fs[j] = sqrt2 * down * sm[j];
      p1[j] = 0;
      p2[j] = 0;
    }
    Out* row = out + i * K;
    for (int l = 0; l < L; ++l) {
      const int64_t k0 = static_cast<int64_t>(l) * l + l;
      const int64_t t0 = tri(l, 0);
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int m = lane + 32 * j;
        if (m <= l) {
          const T p0 = m == l ? seed[j] : a[t0 + m] * z * p1[j] - b[t0 + m] * p2[j];
          p2[j] = p1[j];
          p1[j] = p0;
          row[k0 + m] = static_cast<Out>(p0 * fc[j]);
          if (m > 0) row[k0 - m] = static_cast<Out>(p0 * fs[j]);
        }
      }
    }
  }
}

// Q at order m + 1 and m - 1 for the lane's chunk j (m = lane + 32 j), from the neighbouring
// lanes; across a chunk boundary from lane 0 / lane 31 of the next / previous chunk. j is a
// compile-time constant after unrolling, and every lane must call these (shuffles).
template <typename T, int J>
__device__ __forceinline__ T order_above(const T (&q)[J], int j, int lane) {
  const T v = __shfl_down_sync(kFull, q[j], 1);
  const T wrap = __shfl_sync(kFull, j + 1 < J ? q[j + 1 < J ? j + 1 : j] : T(0), 0);
  return lane == 31 ? wrap : v;
}

template <typename T, int J>
__device__ __forceinline__ T order_below(const T (&q)[J], int j, int lane) {
  const T v = __shfl_up_sync(kFull, q[j], 1);
  const T wrap = __shfl_sync(kFull, j > 0 ? q[j > 0 ? j - 1 : 0] : T(0), 31);
  return lane == 0 ? wrap : v;
}

template <typename T, int J>
__global__ void __launch_bounds__(kThreads) sh_bwd_kernel(const T* __restrict__ grad, int64_t g0,
                                                          const T* __restrict__ lonlat, int64_t s0, int64_t s1,
                                                          int64_t n, int L, const T* __restrict__ a,
                                                          const T* __restrict__ b, const T* __restrict__ sect,
                                                          T* __restrict__ out) {
  constexpr T sqrt2 = static_cast<T>(1.4142135623730951);
  constexpr T deg = static_cast<T>(0.017453292519943295);
  const T down = ShScale<T>::down;
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t i = warp; i < n; i += nwarps) {
    T z, seed[J], cm[J], sm[J], p1[J], p2[J], q[J];
    lane_seeds<T, J>(lonlat[i * s0], lonlat[i * s0 + s1], lane, L, sect, z, seed, cm, sm);
#pragma unroll
    for (int j = 0; j < J; ++j) p1[j] = p2[j] = 0;
    const T* g = grad + i * g0;
    T glon = 0, glat0 = 0, glatm = 0;
    for (int l = 0; l < L; ++l) {
      const int64_t k0 = static_cast<int64_t>(l) * l + l;
      const int64_t t0 = tri(l, 0);
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int m = lane + 32 * j;
        q[j] = 0;
        if (m <= l) {
          const T p0 = m == l ? seed[j] : a[t0 + m] * z * p1[j] - b[t0 + m] * p2[j];
          p2[j] = p1[j];
          p1[j] = p0;
          q[j] = p0 * down;  // unscaled: the sums below cannot overflow whatever grad holds
        }
      }
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int m = lane + 32 * j;
        const T qu = order_above<T, J>(q, j, lane);
        const T qd = order_below<T, J>(q, j, lane);
        if (m <= l) {
          const T gp = g[k0 + m];
          if (m == 0) {
            glat0 += gp * sqrt(static_cast<T>(l) * static_cast<T>(l + 1)) * qu;
          } else {
            const T gn = g[k0 - m];
            const T fm = static_cast<T>(m);
            glon += fm * q[j] * (gn * cm[j] - gp * sm[j]);
            const T dq = static_cast<T>(0.5) *
                         (sqrt(static_cast<T>(l + m + 1) * static_cast<T>(l - m)) * qu -
                          sqrt(static_cast<T>(l + m) * static_cast<T>(l - m + 1)) * qd);
            glatm += dq * (gp * cm[j] + gn * sm[j]);
          }
        }
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      glon += __shfl_xor_sync(kFull, glon, off);
      glat0 += __shfl_xor_sync(kFull, glat0, off);
      glatm += __shfl_xor_sync(kFull, glatm, off);
    }
    if (lane == 0) {
      out[2 * i] = glon * sqrt2 * deg;
      out[2 * i + 1] = (glat0 + sqrt2 * glatm) * deg;
    }
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

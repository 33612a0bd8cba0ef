// sh_siren_layer.cu -- fused SH -> first SIREN layer on the GPU: the SH features of a tile of
// points are generated in shared memory band by band and multiplied into the first layer's
// weights at once; bias, w0 and sine are applied in registers. The [N, L*L] feature matrix
// never touches global memory. Phases, layouts and launch geometry: sh_siren_tile.h (the same
// phases run on the CPU in tests/ops/sim/ so the indexing is tested without a GPU).
// Grid: x over tiles of Tile<T>::M points, y over tiles of Tile<T>::N outputs (the SH of a tile
// are regenerated for each output tile: a few percent of the GEMM's work).
#include "sh_siren_layer.h"

#include <atomic>
#include <mutex>
#include <set>
#include <utility>

#include "bf16_tile.h"
#include "sh_siren_tile.h"
#include "wmma_bf16.cuh"

namespace satclip {
namespace kernels {
namespace {

using namespace fused;

// One kernel instance serves every L of its order bucket, so its dynamic shared-memory maximum
// is set once per device to the device's whole opt-in limit (not per launch to that launch's
// size: two threads launching at different L would race on the attribute).
cudaError_t opt_in_once(const void* kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;  // no opt-in needed below 48 KB
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  size_t limit = 0;
  if (err == cudaSuccess) err = device_smem_optin(device, &limit);
  if (err != cudaSuccess) return err;
  if (bytes > limit) return cudaErrorInvalidConfiguration;
  static std::mutex mu;
  static std::set<std::pair<const void*, int>> done;
  std::lock_guard<std::mutex> lock(mu);
  if (done.count({kernel, device})) return cudaSuccess;
  cudaFuncAttributes attr{};
  err = cudaFuncGetAttributes(&attr, kernel);
  if (err == cudaSuccess) {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(limit - attr.sharedSizeBytes));
  }
  if (err == cudaSuccess) done.insert({kernel, device});
  return err;
}

template <typename T, int J>
__global__ void __launch_bounds__(kThreads, 1) sh_siren_kernel(const T* __restrict__ lonlat, int64_t s0, int64_t s1,
                                                               int64_t n, int L, const T* __restrict__ a,
                                                               const T* __restrict__ b, const T* __restrict__ sect,
                                                               const T* __restrict__ wt, const T* __restrict__ bias,
                                                               int H, T w0, T* __restrict__ out) {
  constexpr int M = Tile<T>::M, N = Tile<T>::N, TM = Tile<T>::TM, TN = Tile<T>::TN;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* A = reinterpret_cast<T*>(smem_raw);
  T* B = A + static_cast<size_t>(2 * L - 1) * M;
  const int tid = threadIdx.x;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * M;
  const int n0 = static_cast<int>(blockIdx.y) * N;
  GenState<T, J> st;
  gen_init<T, J>(tid, lonlat, s0, s1, n, row0, L, sect, st);
  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0;
  }
  for (int l = 0; l < L; ++l) {
    gen_band<T, J>(tid, l, a, b, st, A);
    load_band<T>(tid, l, wt, H, n0, B);
    __syncthreads();
    mma_band<T>(tid, l, A, B, acc);
    __syncthreads();
  }
  epilogue<T>(tid, acc, bias, w0, n, H, row0, n0, out);
}

template <typename T, int J>
cudaError_t launch(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const T* a, const T* b, const T* sect,
                   const T* wt, const T* bias, int H, T w0, T* out, cudaStream_t stream) {
  const size_t bytes = first_layer_smem_bytes(L, sizeof(T));
  // Above 48 KB a kernel must opt in to dynamic shared memory (L = 40 float: 81 KB).
  const cudaError_t err = opt_in_once(reinterpret_cast<const void*>(sh_siren_kernel<T, J>), bytes);
  if (err != cudaSuccess) return err;
  const int64_t tiles = (n + Tile<T>::M - 1) / Tile<T>::M;
  if (tiles > 0x7fffffff) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>((H + Tile<T>::N - 1) / Tile<T>::N));
  sh_siren_kernel<T, J><<<grid, kThreads, bytes, stream>>>(lonlat, s0, s1, n, L, a, b, sect, wt, bias, H, w0, out);
  return cudaGetLastError();
}

template <int J, int LD>
__global__ void __launch_bounds__(kThreads, 1)
    sh_siren_bf16_kernel(const float* __restrict__ lonlat, int64_t s0, int64_t s1, int64_t n, int L,
                         const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ sect,
                         const __nv_bfloat16* __restrict__ wt, const float* __restrict__ bias, int H, float w0,
                         __nv_bfloat16* __restrict__ out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using Bf = __nv_bfloat16;
  extern __shared__ __align__(128) unsigned char smem_bf16[];
  const int R = ring_rows(L);
  Bf* ring = reinterpret_cast<Bf*>(smem_bf16);
  Bf* B = ring + static_cast<size_t>(R) * LD;
  float* scratch = reinterpret_cast<float*>(B + static_cast<size_t>(R) * LD);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * Bf16Tile::M;
  const int n0 = static_cast<int>(blockIdx.y) * Bf16Tile::N;
  const int64_t K = static_cast<int64_t>(L) * L;
  GenState<float, J> st;
  gen_init<float, J>(tid, lonlat, s0, s1, n, row0, L, sect, st);
  WmmaBf16::Acc acc[Bf16Tile::FM][Bf16Tile::FN];
#pragma unroll
  for (int i = 0; i < Bf16Tile::FM; ++i) {
#pragma unroll
    for (int j = 0; j < Bf16Tile::FN; ++j) WmmaBf16::zero(acc[i][j]);
  }
  int produced = 0, consumed = 0;  // ring rows, the same in every thread
  for (int l = 0; l < L; ++l) {
    gen_band<float, J, Bf>(tid, l, a, b, st, ring, produced % R, R, LD);
    produced += 2 * l + 1;
    int ready = produced;
    if (l == L - 1) {
      ready = round_up16(produced);
      zero_ring_rows<Bf>(tid, ring, produced, ready, R, LD);
    }
    const int nb = (ready - consumed) / 16;
    if (nb > 0) {
      load_b_rows<Bf>(tid, wt, K, H, consumed, 16 * nb, n0, B, LD);
      __syncthreads();
      mma_warp<WmmaBf16, Bf>(warp, ring, consumed % R, nb, R, B, acc, LD);
      __syncthreads();
      consumed += 16 * nb;
    }
  }
  epilogue_warp(warp, lane, acc, scratch, bias, w0, n, H, row0, n0, out);
#endif
}

template <int J, int LD>
cudaError_t launch_bf16(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* a, const float* b,
                        const float* sect, const __nv_bfloat16* wt, const float* bias, int H, float w0,
                        __nv_bfloat16* out, cudaStream_t stream) {
  const size_t bytes = first_layer_smem_bytes(L, 2, LD);
  static_assert(sizeof(__nv_bfloat16) == 2, "first_layer_smem_bytes counts 2-byte operands");
  const cudaError_t err = opt_in_once(reinterpret_cast<const void*>(sh_siren_bf16_kernel<J, LD>), bytes);
  if (err != cudaSuccess) return err;
  const int64_t tiles = (n + Bf16Tile::M - 1) / Bf16Tile::M;
  if (tiles > 0x7fffffff) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>((H + Bf16Tile::N - 1) / Bf16Tile::N));
  sh_siren_bf16_kernel<J, LD><<<grid, kThreads, bytes, stream>>>(lonlat, s0, s1, n, L, a, b, sect, wt, bias, H, w0,
                                                                 out);
  return cudaGetLastError();
}

}  // namespace

size_t sh_siren_smem_bytes(int L, int elem_bytes) { return first_layer_smem_bytes(L, elem_bytes, kWmmaLd); }

cudaError_t device_smem_optin(int device, size_t* bytes) {
  static std::mutex mu;
  static std::set<std::pair<int, size_t>> known;  // (device, limit), a handful of entries
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [d, limit] : known) {
    if (d == device) {
      *bytes = limit;
      return cudaSuccess;
    }
  }
  int limit = 0;
  const cudaError_t err = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err != cudaSuccess) return err;
  known.insert({device, static_cast<size_t>(limit)});
  *bytes = static_cast<size_t>(limit);
  return cudaSuccess;
}

cudaError_t launch_sh_siren_bf16(const float* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const float* a,
                                 const float* b, const float* sect, const __nv_bfloat16* wt, const float* bias, int H,
                                 float w0, __nv_bfloat16* out, cudaStream_t stream) {
  if (n == 0 || H == 0) return cudaSuccess;
  if (H > 65535 * Bf16Tile::N) return cudaErrorInvalidValue;
  int device = 0, major = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err != cudaSuccess) return err;
  if (major < 8) return cudaErrorNotSupported;  // bf16 WMMA needs sm_80
  return with_orders<float>(
      L, [&]<int J>() { return launch_bf16<J, kWmmaLd>(lonlat, s0, s1, n, L, a, b, sect, wt, bias, H, w0, out, stream); },
      cudaErrorInvalidValue);
}

template <typename T>
cudaError_t launch_sh_siren(const T* lonlat, int64_t s0, int64_t s1, int64_t n, int L, const T* a, const T* b,
                            const T* sect, const T* wt, const T* bias, int H, T w0, T* out, cudaStream_t stream) {
  if (n == 0 || H == 0) return cudaSuccess;
  if (H > 65535 * Tile<T>::N) return cudaErrorInvalidValue;
  return with_orders<T>(
      L, [&]<int J>() { return launch<T, J>(lonlat, s0, s1, n, L, a, b, sect, wt, bias, H, w0, out, stream); },
      cudaErrorInvalidValue);
}

#define SATCLIP_INSTANTIATE(T)                                                                                 \
  template cudaError_t launch_sh_siren<T>(const T*, int64_t, int64_t, int64_t, int, const T*, const T*, const T*, \
                                          const T*, const T*, int, T, T*, cudaStream_t);
SATCLIP_INSTANTIATE(float)
SATCLIP_INSTANTIATE(double)
#undef SATCLIP_INSTANTIATE

}  // namespace kernels
}  // namespace satclip

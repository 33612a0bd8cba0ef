// sh_warp_sim.cpp -- runs the warp-per-point SH kernels' lane steps (csrc/cuda/sh_warp.h) on the
// CPU: the 32 lanes of a point one after another within each step, the warp shuffles read from
// the other lanes' state exactly as __shfl_down/up/sync define them (a lane past the edge reads
// its own value). Built and called by tests/ops/test_sh_warp_sim.py (ctypes).
// Mirrors sh_fwd_kernel and sh_bwd_kernel in csrc/cuda/spherical_harmonics.cu: keep them in step.
#include <array>
#include <vector>

#include "cuda/sh_warp.h"

namespace {

using namespace satclip::kernels;
using warp::Lane;

template <typename T, int J>
struct SimWarp {
  const std::array<Lane<T, J>, 32>* lanes;
  int lane;
  // q is the calling lane's own array; the others' are read from the warp's lanes.
  T down(const T (&q)[J], int j) const { return lane + 1 < 32 ? (*lanes)[lane + 1].q[j] : q[j]; }
  T up(const T (&q)[J], int j) const { return lane >= 1 ? (*lanes)[lane - 1].q[j] : q[j]; }
  T from(const T (&)[J], int j, int src) const { return (*lanes)[src].q[j]; }
};

template <typename T>
struct Tables {
  std::vector<T> a, b, sect;
  explicit Tables(int L) : a(L * (L + 1) / 2 + 1), b(a.size()), sect(L + 1) {
    sh_coefficients<T>(L, a.data(), b.data(), sect.data());
  }
};

template <typename T, int J>
void forward(const T* lonlat, int64_t n, int L, T* out) {
  const Tables<T> t(L);
  std::array<Lane<T, J>, 32> lanes;
  for (int64_t i = 0; i < n; ++i) {
    T* row = out + i * L * L;
    for (int lane = 0; lane < 32; ++lane) {
      warp::lane_init<T, J>(lane, lonlat[2 * i], lonlat[2 * i + 1], L, t.sect.data(), lanes[lane]);
      warp::lane_forward_factors<T, J>(lane, lanes[lane]);
    }
    for (int l = 0; l < L; ++l) {
      for (int lane = 0; lane < 32; ++lane) warp::lane_forward_degree<T, J, T>(lane, l, t.a.data(), t.b.data(), lanes[lane], row);
    }
  }
}

template <typename T, int J>
void backward(const T* grad, const T* lonlat, int64_t n, int L, T* out) {
  const Tables<T> t(L);
  std::array<Lane<T, J>, 32> lanes;
  for (int64_t i = 0; i < n; ++i) {
    const T* g = grad + i * L * L;
    T glon[32] = {}, glat0[32] = {}, glatm[32] = {};
    for (int lane = 0; lane < 32; ++lane) {
      warp::lane_init<T, J>(lane, lonlat[2 * i], lonlat[2 * i + 1], L, t.sect.data(), lanes[lane]);
    }
    for (int l = 0; l < L; ++l) {
      for (int lane = 0; lane < 32; ++lane) warp::lane_backward_advance<T, J>(lane, l, t.a.data(), t.b.data(), lanes[lane]);
      for (int lane = 0; lane < 32; ++lane) {
        warp::lane_backward_accumulate<T, J>(SimWarp<T, J>{&lanes, lane}, lane, l, lanes[lane], g, glon[lane],
                                             glat0[lane], glatm[lane]);
      }
    }
    T s_lon = 0, s_lat0 = 0, s_latm = 0;  // the kernel's xor-shuffle reduction, in another order
    for (int lane = 0; lane < 32; ++lane) s_lon += glon[lane], s_lat0 += glat0[lane], s_latm += glatm[lane];
    warp::backward_finish<T>(s_lon, s_lat0, s_latm, out + 2 * i);
  }
}

// The kernels' chunk counts (with_lane_chunks in spherical_harmonics.cu).
template <typename F>
int with_chunks(int L, F&& f) {
  if (L < 1) return 1;
  if (L <= 32) return f.template operator()<1>(), 0;
  if (L <= 64) return f.template operator()<2>(), 0;
  if (L <= 128) return f.template operator()<4>(), 0;
  if (L <= 256) return f.template operator()<8>(), 0;
  if (L <= 1024) return f.template operator()<32>(), 0;
  return 1;
}

}  // namespace

extern "C" {
int sh_fwd_sim_f64(const double* lonlat, int64_t n, int L, double* out) {
  return with_chunks(L, [&]<int J>() { forward<double, J>(lonlat, n, L, out); });
}
int sh_bwd_sim_f64(const double* grad, const double* lonlat, int64_t n, int L, double* out) {
  return with_chunks(L, [&]<int J>() { backward<double, J>(grad, lonlat, n, L, out); });
}
}

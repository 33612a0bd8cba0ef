// encoder_bf16_avx512.cpp -- see encoder_bf16_avx512.h for what it computes and the layouts.
//
// GEMM: a register tile of 6 rows x 64 columns (24 zmm accumulators, the bias added at the end); per
// k-pair four 64-byte weight loads and six 32-bit broadcasts of (x[r, 2p], x[r, 2p + 1]) feed 24
// VDPBF16PS (32 bf16 products each, summed in float32). The weight block of 64 columns (K * 128
// bytes: 205 KB at L = 40) stays in L2 while every row of a thread's block of points passes it.
// The tile is finished in L1: the output layer stores float32; a sine layer applies
// sin(w0 * z) (fast_sincos, std::sin beyond its range or for NaN, as the epilogue of
// kernels_cpu.cpp) and stores bf16, the next layer's operand, so no float32 activation matrix
// and no separate conversion pass exist.
#include "encoder_bf16_avx512.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/bf16_round.h"
#include "../common/encoder_driver.h"
#include "fast_sincos.h"
#include "kernels_cpu.h"

namespace satclip {
namespace kernels {
namespace avx512bf16 {

namespace {

constexpr int kRows = 6;          // rows of the register tile
constexpr int64_t kBlockPoints = 48;  // points per thread step: 3 SH vectors of 16, 8 tiles of 6

// n float32 values -> bf16 (VCVTNEPS2BF16: nearest-even), dst[n] = 0 when `pad` (odd width).
inline void row_to_bf16(const float* src, int64_t n, uint16_t* dst, bool pad) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + j));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), reinterpret_cast<const __m256i&>(v));
  }
  if (j < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - j)) - 1u);
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + j));
    _mm256_mask_storeu_epi16(dst + j, mask, reinterpret_cast<const __m256i&>(v));
  }
  if (pad) dst[n] = 0;
}

// t[r][0..64) = x[r] . W[block]^T + bias for r < MR.
template <int MR>
inline void tile(const uint16_t* x, int64_t ldx, int64_t k2, const uint16_t* wb, const float* bias, float* t) {
  __m512 acc[MR][4];
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  const int32_t* xr[MR];
  for (int r = 0; r < MR; ++r) xr[r] = reinterpret_cast<const int32_t*>(x + r * ldx);
  for (int64_t p = 0; p < k2; ++p) {
    const uint16_t* w = wb + p * 128;
    const __m512bh w0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w));
    const __m512bh w1 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + 32));
    const __m512bh w2 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + 64));
    const __m512bh w3 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(w + 96));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(xr[r][p]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, w0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, w1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], a, w2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], a, w3);
    }
  }
  // The bias joins the finished sum (one rounding), not the first term: a bias far larger than
  // the products would otherwise round every partial sum at its own scale.
  for (int j = 0; j < 4; ++j) {
    const __m512 b = _mm512_loadu_ps(bias + 16 * j);
    for (int r = 0; r < MR; ++r) _mm512_storeu_ps(t + r * kBlockN + 16 * j, _mm512_add_ps(acc[r][j], b));
  }
}

// sin(w0 * z) of one tile row's `cols` values, stored as bf16.
inline void sine_row_to_bf16(const float* z, int64_t cols, float w0, uint16_t* dst) {
  alignas(64) float s[kBlockN], c[kBlockN];
  int outside = 0;
#pragma omp simd reduction(+ : outside)
  for (int j = 0; j < kBlockN; ++j) outside += (std::abs(w0 * z[j]) <= kFastSinCosMaxF) ? 0 : 1;
  if (outside == 0) {
    // The cosine goes to a scratch row: GCC does not vectorise the loop once half of
    // fast_sincos is dead code (see kernels_cpu.cpp's epilogue).
#pragma omp simd
    for (int j = 0; j < kBlockN; ++j) fast_sincos(w0 * z[j], s[j], c[j]);
  } else {
    for (int j = 0; j < kBlockN; ++j) s[j] = std::sin(w0 * z[j]);
  }
  row_to_bf16(s, cols, dst, false);
}

template <int MR>
inline void tile_and_finish(const uint16_t* x, int64_t ldx, int64_t k2, const uint16_t* wb, const PackedLayer& layer,
                            int64_t c0, float* y, int64_t ldy, uint16_t* yb, int64_t ldyb) {
  alignas(64) float t[MR * kBlockN];
  tile<MR>(x, ldx, k2, wb, layer.bias + c0, t);
  const int64_t cols = std::min(kBlockN, layer.n - c0);
  for (int r = 0; r < MR; ++r) {
    if (layer.sine) {
      sine_row_to_bf16(t + r * kBlockN, cols, layer.w0, yb + r * ldyb + c0);
    } else {
      std::memcpy(y + r * ldy + c0, t + r * kBlockN, sizeof(float) * cols);
    }
  }
}

// One layer over m rows, one thread: float32 rows y (output layer) or bf16 rows yb (sine layer).
void layer_rows(const uint16_t* x, int64_t ldx, int64_t m, const PackedLayer& layer, float* y, int64_t ldy,
                uint16_t* yb, int64_t ldyb) {
  const int64_t k2 = padded_k(layer.k) / 2, blocks = padded_n(layer.n) / kBlockN;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint16_t* wb = layer.weight + b * k2 * 2 * kBlockN;
    const int64_t c0 = b * kBlockN;
    int64_t r0 = 0;
    for (; r0 + kRows <= m; r0 += kRows) {
      tile_and_finish<kRows>(x + r0 * ldx, ldx, k2, wb, layer, c0, y + r0 * ldy, ldy, yb + r0 * ldyb, ldyb);
    }
    const uint16_t* xt = x + r0 * ldx;
    float* yt = y + r0 * ldy;
    uint16_t* ybt = yb + r0 * ldyb;
    switch (m - r0) {
      case 5: tile_and_finish<5>(xt, ldx, k2, wb, layer, c0, yt, ldy, ybt, ldyb); break;
      case 4: tile_and_finish<4>(xt, ldx, k2, wb, layer, c0, yt, ldy, ybt, ldyb); break;
      case 3: tile_and_finish<3>(xt, ldx, k2, wb, layer, c0, yt, ldy, ybt, ldyb); break;
      case 2: tile_and_finish<2>(xt, ldx, k2, wb, layer, c0, yt, ldy, ybt, ldyb); break;
      case 1: tile_and_finish<1>(xt, ldx, k2, wb, layer, c0, yt, ldy, ybt, ldyb); break;
      default: break;
    }
  }
  if (layer.sine && layer.n % 2 == 1) {
    for (int64_t r = 0; r < m; ++r) yb[r * ldyb + layer.n] = 0;  // the next layer's zero k-pad
  }
}

}  // namespace

void pack_weight_bf16(const float* w, int64_t ldw, int64_t n, int64_t k, uint16_t* packed) {
  const int64_t k2 = padded_k(k) / 2, np = padded_n(n);
  for (int64_t col = 0; col < np; ++col) {
    const int64_t b = col / kBlockN, j = col % kBlockN;
    for (int64_t p = 0; p < k2; ++p) {
      for (int t = 0; t < 2; ++t) {
        const int64_t kk = 2 * p + t;
        packed[((b * k2 + p) * kBlockN + j) * 2 + t] = (col < n && kk < k) ? static_cast<uint16_t>(bf16_rounded_bits(w[col * ldw + kk]) >> 16) : 0;
      }
    }
  }
}

namespace {

// One thread's blocks of points through the encoder driver (common/encoder_driver.h): the SH of a
// block into a float32 tile, stored as bf16 pairs (the operand rounding), then every layer on the
// register tiles, activations in two bf16 buffers that stay in the thread's cache.
class BlockBackend {
 public:
  struct Act {
    const uint16_t* p = nullptr;
    int64_t ld = 0, m = 0;
  };

  BlockBackend(const float* lonlat, int64_t s0, int64_t s1, int L, const PackedLayer* layers, int nlayers, float* out,
               int64_t ldo)
      : lonlat_(lonlat), s0_(s0), s1_(s1), L_(L), layers_(layers), nlayers_(nlayers), out_(out), ldo_(ldo) {
    const int64_t features = static_cast<int64_t>(L) * L;
    int64_t kmax = padded_k(features);
    for (int i = 0; i < nlayers; ++i) kmax = std::max(kmax, padded_k(layers[i].n));
    sh_.resize(kBlockPoints * features);
    act_[0].resize(kBlockPoints * kmax);
    act_[1].resize(kBlockPoints * kmax);
  }

  int layers() const { return nlayers_; }
  bool fuses_first_layer() const { return false; }
  Act first_layer(int64_t, int64_t) { return {}; }  // never asked: fuses_first_layer() is false

  Act features(int64_t lo, int64_t m) {
    const int64_t features = static_cast<int64_t>(L_) * L_, ld = padded_k(features);
    avx512::sh_fwd<float>(lonlat_ + lo * s0_, s0_, s1_, m, L_, sh_.data(), nullptr, 1);
    for (int64_t r = 0; r < m; ++r) row_to_bf16(sh_.data() + r * features, features, act_[0].data() + r * ld, features % 2 == 1);
    lo_ = lo;
    slot_ = 1;
    return {act_[0].data(), ld, m};
  }

  Act sine_layer(int i, const Act& x) {
    uint16_t* y = act_[slot_].data();
    slot_ ^= 1;
    const int64_t ld = padded_k(layers_[i].n);
    layer_rows(x.p, x.ld, x.m, layers_[i], out_ + lo_ * ldo_, ldo_, y, ld);
    return {y, ld, x.m};
  }

  void linear_out(int i, const Act& x, int64_t lo, int64_t m) {
    layer_rows(x.p, x.ld, m, layers_[i], out_ + lo * ldo_, ldo_, act_[slot_].data(), padded_k(layers_[i].n));
  }

 private:
  const float* lonlat_;
  int64_t s0_, s1_;
  int L_;
  const PackedLayer* layers_;
  int nlayers_;
  float* out_;
  int64_t ldo_, lo_ = 0;
  std::vector<float> sh_;
  std::vector<uint16_t> act_[2];
  int slot_ = 0;
};

}  // namespace

void encoder_forward(const float* lonlat, int64_t s0, int64_t s1, int64_t npts, int L, const PackedLayer* layers,
                     int nlayers, float* out, int64_t ldo, int threads) {
  if (npts == 0) return;
  const int64_t blocks = (npts + kBlockPoints - 1) / kBlockPoints;
#pragma omp parallel num_threads(threads)
  {
    BlockBackend be(lonlat, s0, s1, L, layers, nlayers, out, ldo);
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t lo = blk * kBlockPoints;
      driver::encode_chunk(be, lo, std::min(npts, lo + kBlockPoints) - lo);
    }
  }
}

}  // namespace avx512bf16
}  // namespace kernels
}  // namespace satclip

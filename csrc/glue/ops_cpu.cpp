// ops_cpu.cpp -- torch glue for the CPU kernels: argument checks, allocation, dtype dispatch,
// run-time choice of the instruction set, and the registrations under the CPU dispatch key.
// LibTorch's stable ABI only (stable_tensor.h): this library loads in every torch from 2.11 on.
//
// The op schemas are defined once, in Python (satclip/ops/schemas.py), before this library is
// loaded; here we only register implementations. Every check names the argument and what
// was expected, because these messages reach users of satclip.functional directly.
#include <torch/csrc/inductor/aoti_torch/generated/c_shim_cpu.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../common/bf16_round.h"
#include "../common/fp16_round.h"
#include "../cpu/encoder_bf16_avx512.h"
#include "../cpu/kernels_cpu.h"
#include "cpu_bf16_gemm.h"
#include "encoder_loop.h"

namespace satclip {
namespace {

// The instruction sets the CPU kernels are built for, in order: each level needs the ones before.
enum IsaLevel : int { kBase = 0, kAvx2 = 1, kAvx512 = 2 };

int cpu_best_isa() {
  static const int v = [] {
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return int(kBase);
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    return int(avx512 ? kAvx512 : kAvx2);
  }();
  return v;
}

// The kernels' instruction set: the best the CPU has unless satclip.ops.switches
// (SATCLIP_CPU_ISA) asks for a lower one through satclip::_cpu_isa (-1: the best).
std::atomic<int> g_isa{-1};

int isa_in_use() {
  const int forced = g_isa.load(std::memory_order_relaxed);
  return forced < 0 ? cpu_best_isa() : forced;
}

// One place that forwards to the kernels of the chosen instruction set.
#define SATCLIP_CPU_CALL(fn, ...)                   \
  do {                                              \
    switch (isa_in_use()) {                         \
      case kAvx512:                                 \
        kernels::avx512::fn(__VA_ARGS__);           \
        break;                                      \
      case kAvx2:                                   \
        kernels::avx2::fn(__VA_ARGS__);             \
        break;                                      \
      default:                                      \
        kernels::base::fn(__VA_ARGS__);             \
    }                                               \
  } while (0)

int threads() { return static_cast<int>(torch::stable::get_num_threads()); }

// y = x W^T + b (y may be a row block of a larger matrix), through torch's BLAS.
void addmm_into(Tensor& y, const Tensor& b, const Tensor& x, const Tensor& w) {
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu_addmm_out(y.get(), b.get(), x.get(), transposed(w).get(), 1.0, 1.0));
}

// a @ b into a new tensor.
Tensor mm(const Tensor& a, const Tensor& b) {
  Tensor out = empty_like_shape({a.size(0), b.size(1)}, a);
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu_mm_out(out.get(), a.get(), b.get()));
  return out;
}

// Large outputs ([N, L*L] features) cost more to page in than to compute: first touch of
// fresh 4 KiB pages runs at ~0.25 ns/byte here, three times the kernel's own time at L = 40.
// Asking for transparent huge pages on the untouched, 2 MiB-aligned interior of the new
// buffer (advisory; ignored where THP is off) cuts that to ~0.06 ns/byte (measured: 640 MB in
// 38 ms instead of 180 ms). Below 256 MB the kernel's compaction stalls (defrag=madvise) cost
// more than they save (80 MB: 25-115 ms instead of 27 ms), so small buffers are left alone.
void advise_huge_pages(const Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (bytes < (size_t(256) << 20)) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (p + kHuge - 1) & ~(kHuge - 1), hi = (p + bytes) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

Tensor sh_forward_op(const Tensor& lonlat, int64_t L, std::optional<Tensor> scale) {
  const char* op = "satclip::spherical_harmonics";
  check_lonlat(lonlat, op, DeviceType::CPU);
  check_degree(L, op);
  const std::optional<Tensor> s = check_sh_scale(scale, lonlat, L, op);
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, L * L}, lonlat);
  advise_huge_pages(out);
  dispatch_floating(lonlat.scalar_type(), op, [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CPU_CALL(sh_fwd<scalar_t>, lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0), lonlat.stride(1), n,
                     static_cast<int>(L), out.mutable_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(s), threads());
  });
  return out;
}

Tensor sh_forward(const Tensor& lonlat, int64_t L) { return sh_forward_op(lonlat, L, std::nullopt); }

Tensor sh_backward(const Tensor& grad, const Tensor& lonlat, int64_t L) {
  const char* op = "satclip::spherical_harmonics_backward";
  check_lonlat(lonlat, op, DeviceType::CPU);
  check_degree(L, op);
  check_sh_grad(grad, lonlat, L, op);
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, 2}, lonlat);
  dispatch_floating(lonlat.scalar_type(), op, [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CPU_CALL(sh_bwd<scalar_t>, grad.const_data_ptr<scalar_t>(), grad.stride(0), grad.stride(1),
                     lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
                     out.mutable_data_ptr<scalar_t>(), threads());
  });
  return out;
}

// z = x W^T + b through torch's BLAS, then one fused pass: mask, w0, sin (and cos if asked).
std::tuple<Tensor, Tensor> siren_layer(const Tensor& x, const Tensor& weight, const Tensor& bias, double w0,
                                       std::optional<Tensor> mask, bool save_cos) {
  const char* op = "satclip::siren_layer";
  check_linear(x, weight, bias, op);
  const int64_t n = x.size(0), h = weight.size(0);
  const std::optional<Tensor> m = checked_mask(mask, x, n, h, op);
  Tensor y = empty_like_shape({n, h}, x);
  addmm_into(y, bias, x, weight);
  Tensor c = save_cos ? empty_like_shape({n, h}, x) : empty_like_shape({0}, x);
  dispatch_floating(x.scalar_type(), op, [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CPU_CALL(siren_epilogue<scalar_t>, y.mutable_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
                     static_cast<scalar_t>(w0), y.numel(), save_cos ? c.mutable_data_ptr<scalar_t>() : nullptr,
                     threads());
  });
  return {y, c};
}

std::tuple<Tensor, Tensor, Tensor> siren_layer_backward(const Tensor& grad_y, const Tensor& cos, const Tensor& x,
                                                        const Tensor& weight, double w0, std::optional<Tensor> mask,
                                                        bool need_grad_x) {
  const char* op = "satclip::siren_layer_backward";
  check_siren_backward(grad_y, cos, x, weight, op);
  const std::optional<Tensor> m = checked_mask(mask, x, x.size(0), weight.size(0), op);
  const Tensor gy = torch::stable::contiguous(grad_y), cc = torch::stable::contiguous(cos);
  Tensor gz = torch::stable::empty_like(gy);
  dispatch_floating(x.scalar_type(), op, [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CPU_CALL(siren_grad_epilogue<scalar_t>, gy.const_data_ptr<scalar_t>(), cc.const_data_ptr<scalar_t>(),
                     ptr_or_null<scalar_t>(m), static_cast<scalar_t>(w0), gz.numel(),
                     gz.mutable_data_ptr<scalar_t>(), threads());
  });
  const std::vector<int64_t> dim0{0};
  return {need_grad_x ? mm(gz, weight) : empty_like_shape({0}, x), mm(transposed(gz), x),
          torch::stable::sum(gz, torch::headeronly::IntHeaderOnlyArrayRef(dim0))};
}

// dst = src rounded to bf16 (common/bf16_round.h), kept float32: the operand of a float32 GEMM
// that computes the bf16 mode exactly; `bits` (dst16) the same values as bf16 bit patterns, MKL's
// bf16 operand.

void round_to_bf16(const float* src, float* dst, int64_t n) {
  torch::stable::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const uint32_t r = bf16_rounded_bits(src[i]);
      std::memcpy(dst + i, &r, sizeof r);
    }
  });
}

void round_to_bf16_bits(const float* src, uint16_t* dst, int64_t n) {
  torch::stable::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) dst[i] = static_cast<uint16_t>(bf16_rounded_bits(src[i]) >> 16);
  });
}

// tf32: round to nearest even at 10 mantissa bits (as the reference twin).
void round_to_tf32(const float* src, float* dst, int64_t n) {
  torch::stable::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      uint32_t u;
      std::memcpy(&u, src + i, sizeof u);
      const uint32_t r = (u + 0xFFFu + ((u >> 13) & 1u)) & ~uint32_t(0x1FFF);
      std::memcpy(dst + i, &r, sizeof r);
    }
  });
}

// float16: nearest even at half's 10 mantissa bits, half's range and subnormals (common/fp16_round.h);
// with F16C (every AVX2 CPU has it; used from SATCLIP_CPU_ISA=avx2 on) 8 values per instruction pair (VCVTPS2PH with round-to-nearest,
// VCVTPH2PS: the same values, the conversion being IEEE's), the scalar rounding elsewhere.
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void round_fp16_block_f16c(const float* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = fp16_round(src[i]);
}
#endif

void round_to_fp16(const float* src, float* dst, int64_t n) {
#if defined(__x86_64__)
  // SATCLIP_CPU_ISA=base keeps to baseline x86-64: the scalar rounding (the base-ISA tests run it)
  static const bool has_f16c = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  }();
  const bool f16c = has_f16c && isa_in_use() >= kAvx2;
#else
  constexpr bool f16c = false;
#endif
  torch::stable::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
#if defined(__x86_64__)
    if (f16c) return round_fp16_block_f16c(src + lo, dst + lo, hi - lo);
#endif
    for (int64_t i = lo; i < hi; ++i) dst[i] = fp16_round(src[i]);
  });
}

using RoundFn = void (*)(const float*, float*, int64_t);

// The rounding of each reduced precision's GEMM operands, kept float32.
RoundFn rounding_of(Precision p) {
  switch (p) {
    case Precision::kBF16: return round_to_bf16;
    case Precision::kTF32: return round_to_tf32;
    case Precision::kFloat16: return round_to_fp16;
    default: return nullptr;
  }
}

// x rounded to the operand format of p (a new contiguous float32 tensor; x itself for float32).
Tensor round_operand(const Tensor& x, Precision p) {
  if (p == Precision::kFloat32) return x;
  const Tensor src = torch::stable::contiguous(x);
  Tensor dst = torch::stable::empty_like(src);
  rounding_of(p)(src.const_data_ptr<float>(), dst.mutable_data_ptr<float>(), src.numel());
  return dst;
}

// SH -> first sine layer. On the CPU the features of a call exist once (the encoder forward
// bounds them by chunking); the CUDA kernels keep them on chip.
Tensor sh_siren_layer(const Tensor& lonlat, int64_t L, const Tensor& weight, const Tensor& bias, double w0,
                      std::string_view precision) {
  if (!check_sh_siren_layer(lonlat, L, weight, bias, precision, DeviceType::CPU)) {
    return std::get<0>(siren_layer(sh_forward(lonlat, L), weight, bias, w0, std::nullopt, false));
  }
  const Tensor y = std::get<0>(siren_layer(round_operand(sh_forward(lonlat, L), Precision::kBF16),
                                           round_operand(weight, Precision::kBF16), bias, w0, std::nullopt, false));
  return torch::stable::to(y, ScalarType::BFloat16);
}

// The encoder's sine layers and linear output over chunks of points, with one workspace per
// call: two activation buffers (sized for the widest layer) are allocated once and reused by
// every chunk. Fresh buffers per chunk are paged in again whenever they exceed glibc's mmap
// threshold (a 16,384-point chunk of 512 activations is 32 MB), which cost up to a quarter of
// the encoder's time. `first(lo, m, y)` writes the first layer's pre-activation (bias included)
// of points [lo, lo + m) into y ([m, H0]); `bounds` holds the chunk starts and n at the end;
// `weights`/`biases` are the layers after the first (the last one linear); `gemm(y, b, x, W)`
// writes y = x W^T + b (float32/float64 addmm, or the bf16 GEMM of the bf16 mode).
template <typename scalar_t, typename First, typename Gemm>
void sine_layers_chunked(const Tensor& out, const std::vector<int64_t>& bounds, int64_t h0, First first,
                         const TensorList& weights, const TensorList& biases, double w0_first, double w0_hidden,
                         Gemm gemm) {
  const int64_t layers = static_cast<int64_t>(weights.size());
  int64_t c = 0, hmax = h0;
  for (size_t k = 0; k + 1 < bounds.size(); ++k) c = std::max(c, bounds[k + 1] - bounds[k]);
  for (int64_t i = 0; i + 1 < layers; ++i) hmax = std::max(hmax, weights[i].size(0));
  const Tensor act[2] = {empty_like_shape({c * hmax}, out), empty_like_shape({c * hmax}, out)};
  const int nthreads = threads();
  for (size_t k = 0; k + 1 < bounds.size(); ++k) {
    const int64_t lo = bounds[k], m = bounds[k + 1] - lo;
    Tensor x = view2d(act[0], m, h0);
    first(lo, m, x);
    for (int64_t i = -1; i + 1 < layers; ++i) {  // i = -1: the first layer (pre-activation done)
      Tensor y = x;
      if (i >= 0) {
        y = view2d(act[(i + 1) % 2], m, weights[i].size(0));
        gemm(y, biases[i], x, weights[i]);
      }
      SATCLIP_CPU_CALL(siren_epilogue<scalar_t>, y.mutable_data_ptr<scalar_t>(), nullptr,
                       static_cast<scalar_t>(i < 0 ? w0_first : w0_hidden), y.numel(), nullptr, nthreads);
      x = y;
    }
    Tensor dst = rows(out, lo, m);
    gemm(dst, biases[layers - 1], x, weights[layers - 1]);
  }
}

TensorList tail(const TensorList& v) { return TensorList(v.begin() + 1, v.end()); }

// The encoder from the coordinates over one workspace: SH of a chunk into a features buffer
// reused by every chunk, then the layers, `gemm` (see sine_layers_chunked) for each.
template <typename scalar_t, typename Gemm>
void encoder_from_sh(const Tensor& out, const Tensor& lonlat, int64_t L, const TensorList& weights,
                     const TensorList& biases, double w0_first, double w0_hidden, int64_t tile_points, Gemm gemm) {
  const int64_t n = lonlat.size(0);
  if (n == 0) return;
  const int64_t c = std::min(n, tile_points);
  const Tensor feats = empty_like_shape({c, L * L}, lonlat);
  const int nthreads = threads();
  auto sh_chunk = [&](int64_t lo, int64_t m) {
    const Tensor pts = rows(lonlat, lo, m);
    Tensor x = rows(feats, 0, m);
    SATCLIP_CPU_CALL(sh_fwd<scalar_t>, pts.const_data_ptr<scalar_t>(), pts.stride(0), pts.stride(1), m,
                     static_cast<int>(L), x.mutable_data_ptr<scalar_t>(), nullptr, nthreads);
    return x;
  };
  std::vector<int64_t> bounds;
  for (int64_t lo = 0; lo < n; lo += c) bounds.push_back(lo);
  bounds.push_back(n);
  if (weights.size() == 1) {  // no sine layer: SH -> linear
    for (size_t k = 0; k + 1 < bounds.size(); ++k) {
      Tensor dst = rows(out, bounds[k], bounds[k + 1] - bounds[k]);
      gemm(dst, biases[0], sh_chunk(bounds[k], bounds[k + 1] - bounds[k]), weights[0]);
    }
    return;
  }
  sine_layers_chunked<scalar_t>(
      out, bounds, weights[0].size(0), [&](int64_t lo, int64_t m, Tensor& y) { gemm(y, biases[0], sh_chunk(lo, m), weights[0]); },
      tail(weights), tail(biases), w0_first, w0_hidden, gemm);
}

// The exact encoder (float32 / float64).
Tensor encoder_forward_exact(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                             double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CPU);
  Tensor out = empty_like_shape({lonlat.size(0), width}, lonlat);
  dispatch_floating(lonlat.scalar_type(), "satclip::location_encoder_forward", [&](auto zero) {
    using scalar_t = decltype(zero);
    encoder_from_sh<scalar_t>(out, lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, addmm_into);
  });
  return out;
}

// The encoder with its first layer factorised over latitude rows (satclip/nn/iso_latitude.py):
// points sorted into rows of one latitude (row_counts[r] points each, in order); the first
// layer's pre-activation of row r is lon_parts[row] @ row_weights[r] + b0, one small GEMM per
// row; chunks hold whole rows (about tile_points points; a longer row is a chunk of its own).
Tensor iso_latitude_encoder_forward(const Tensor& lon_parts, const Tensor& row_weights,
                                    const std::vector<int64_t>& row_counts, const TensorList& weights,
                                    const TensorList& biases, double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width =
      check_iso_latitude_encoder(lon_parts, row_weights, row_counts, weights, biases, tile_points, DeviceType::CPU);
  const int64_t n = lon_parts.size(0);
  Tensor out = empty_like_shape({n, width}, lon_parts);
  if (n == 0) return out;
  std::vector<int64_t> row_start(row_counts.size() + 1, 0), bounds{0};
  for (size_t r = 0; r < row_counts.size(); ++r) {
    row_start[r + 1] = row_start[r] + row_counts[r];
    if (row_start[r + 1] - bounds.back() > tile_points && row_start[r] > bounds.back()) bounds.push_back(row_start[r]);
  }
  bounds.push_back(n);
  const Tensor b0 = biases[0];
  dispatch_floating(lon_parts.scalar_type(), "satclip::iso_latitude_encoder_forward", [&](auto zero) {
    using scalar_t = decltype(zero);
    size_t r = 0;  // the first row of the chunk being written
    sine_layers_chunked<scalar_t>(
        out, bounds, row_weights.size(2),
        [&](int64_t lo, int64_t m, Tensor& y) {
          for (; r < row_counts.size() && row_start[r] < lo + m; ++r) {
            if (row_counts[r] == 0) continue;
            Tensor dst = rows(y, row_start[r] - lo, row_counts[r]);
            const Tensor part = rows(lon_parts, row_start[r], row_counts[r]);
            const Tensor wr = torch::stable::select(row_weights, 0, static_cast<int64_t>(r));
            STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu_addmm_out(dst.get(), b0.get(), part.get(), wr.get(), 1.0, 1.0));
          }
        },
        weights, tail(biases), w0_first, w0_hidden, addmm_into);
  });
  return out;
}

// A reduced precision (tf32, bf16, float16) over the exact encoder's one workspace: each GEMM's
// input is rounded to the mode's operand format as it is handed over (the SH chunk, every sine
// layer's output: one conversion pass, in cache), the weights once per call; products, sums,
// bias, w0 and sine in float32. Either float32 GEMMs on the rounded values (a float32 copy of
// each operand: exactly what a tensor core computes in that mode, and the fast path on a CPU
// whose float32 GEMM outruns its reduced-precision one), or, `mkl` (bf16 only), MKL's bf16 GEMM
// with a float32 result (cpu_bf16_gemm.h; bf16 instructions where the CPU has them). The two
// give the same numbers up to summation order.
Tensor encoder_forward_rounded(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                               double w0_first, double w0_hidden, int64_t tile_points, Precision precision, bool mkl) {
  SATCLIP_CHECK(!mkl || precision == Precision::kBF16, "satclip: MKL's reduced-precision GEMM is bf16's only");
  const RoundFn round = rounding_of(precision);
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CPU);
  const int64_t n = lonlat.size(0), layers = static_cast<int64_t>(weights.size());
  Tensor out = empty_like_shape({n, width}, lonlat);
  int64_t kmax = L * L;
  for (int64_t i = 0; i + 1 < layers; ++i) kmax = std::max(kmax, weights[i].size(0));
  const ScalarType operand = mkl ? ScalarType::BFloat16 : ScalarType::Float;
  // The weights rounded once: bf16 bit patterns for MKL, bf16 values kept float32 otherwise.
  TensorList wr;
  for (const Tensor& w : weights) {
    const Tensor src = torch::stable::contiguous(w);
    Tensor dst = empty(std::vector<int64_t>(src.sizes().begin(), src.sizes().end()), operand, src.device());
    if (mkl) {
      round_to_bf16_bits(src.const_data_ptr<float>(), static_cast<uint16_t*>(dst.mutable_data_ptr()), src.numel());
    } else {
      round(src.const_data_ptr<float>(), dst.mutable_data_ptr<float>(), src.numel());
    }
    wr.push_back(dst);
  }
  const Tensor xb = empty({std::min(n, tile_points) * kmax}, operand, lonlat.device());
  const GemmBf16Fn fn = mkl ? mkl_gemm_bf16() : nullptr;
  auto gemm = [&](Tensor& y, const Tensor& b, const Tensor& x, const Tensor& w) {
    const int64_t m = x.size(0), k = x.size(1), h = w.size(0);
    Tensor xr = view2d(xb, m, k);
    const Tensor xc = torch::stable::contiguous(x);
    if (!mkl) {
      round(xc.const_data_ptr<float>(), xr.mutable_data_ptr<float>(), m * k);
      addmm_into(y, b, xr, w);
      return;
    }
    round_to_bf16_bits(xc.const_data_ptr<float>(), static_cast<uint16_t*>(xr.mutable_data_ptr()), m * k);
    float* yp = y.mutable_data_ptr<float>();
    const Tensor bc = torch::stable::contiguous(b);
    const float* bp = bc.const_data_ptr<float>();
    for (int64_t r = 0; r < m; ++r) std::memcpy(yp + r * y.stride(0), bp, sizeof(float) * h);  // beta = 1 below
    fn(kCblasRowMajor, kCblasNoTrans, kCblasTrans, static_cast<int>(m), static_cast<int>(h), static_cast<int>(k),
       1.0f, static_cast<const uint16_t*>(xr.const_data_ptr()), static_cast<int>(k),
       static_cast<const uint16_t*>(w.const_data_ptr()), static_cast<int>(k), 1.0f, yp, static_cast<int>(y.stride(0)));
  };
  encoder_from_sh<float>(out, lonlat, L, wr, biases, w0_first, w0_hidden, tile_points, gemm);
  return out;
}

// precision="bf16" on this package's AVX512-BF16 kernels (cpu/encoder_bf16_avx512.h): the
// weights rounded and packed once per call (bias padded), then every block of points through all
// layers in one thread's cache. Its own blocks of 48 points; tile_points does not apply.
Tensor encoder_forward_bf16_avx512(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                                   double w0_first, double w0_hidden, int64_t tile_points) {
  namespace nk = kernels::avx512bf16;
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CPU);
  const int64_t n = lonlat.size(0), layers = static_cast<int64_t>(weights.size());
  Tensor out = empty_like_shape({n, width}, lonlat);
  std::vector<Tensor> keep;  // packed weights and padded biases, alive for the call
  std::vector<nk::PackedLayer> packed;
  for (int64_t i = 0; i < layers; ++i) {
    const Tensor w = torch::stable::contiguous(weights[i]), b = torch::stable::contiguous(biases[i]);
    const int64_t h = w.size(0), k = w.size(1);
    Tensor wp = empty({nk::packed_weight_size(h, k)}, ScalarType::BFloat16, lonlat.device());
    nk::pack_weight_bf16(w.const_data_ptr<float>(), k, h, k, static_cast<uint16_t*>(wp.mutable_data_ptr()));
    Tensor bp = empty({nk::padded_n(h)}, ScalarType::Float, lonlat.device());
    float* bd = bp.mutable_data_ptr<float>();
    std::memcpy(bd, b.const_data_ptr<float>(), sizeof(float) * h);
    std::fill(bd + h, bd + nk::padded_n(h), 0.0f);
    const bool last = i + 1 == layers;
    packed.push_back({static_cast<const uint16_t*>(wp.const_data_ptr()), bd, h, k,
                      static_cast<float>(i == 0 ? w0_first : w0_hidden), !last});
    keep.push_back(wp);
    keep.push_back(bp);
  }
  if (n > 0) {
    nk::encoder_forward(lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
                        packed.data(), static_cast<int>(layers), out.mutable_data_ptr<float>(), out.stride(0), threads());
  }
  return out;
}

// precision="bf16" by one path (cpu_bf16_gemm.h).
Tensor encoder_forward_bf16_path(Bf16Path path, const Tensor& lonlat, int64_t L, const TensorList& weights,
                                 const TensorList& biases, double w0_first, double w0_hidden, int64_t tile_points) {
  if (path == Bf16Path::kAvx512Bf16) {
    return encoder_forward_bf16_avx512(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  }
  return encoder_forward_rounded(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, Precision::kBF16,
                                 path == Bf16Path::kMkl);
}

// precision="bf16" in "auto" mode: which path is fastest is a property of the machine (bf16
// units, MKL's code paths) and the shape, not of the CPU flags alone: on an AVX512-BF16 CPU
// without AMX, MKL's bf16 GEMM ran at 0.6-0.9x the float32 GEMM here, and where AMX exists MKL's
// GEMMs may beat this package's kernels. So every candidate is timed once per shape, on the first
// call's first points (best of two runs each), and the fastest is kept (bounded map; satclip info
// lists the choices).
struct Bf16Choices {
  std::mutex mu;
  std::map<std::string, std::pair<Bf16Path, std::string>> decided;
};

Bf16Choices& bf16_choices() {
  static Bf16Choices c;
  return c;
}

double best_seconds(const std::function<void()>& f) {
  double best = 1e300;
  for (int r = 0; r < 2; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

Bf16Path bf16_path_measured(const Bf16GemmChoice& choice, const Tensor& lonlat, int64_t L, const TensorList& weights,
                            const TensorList& biases, double w0_first, double w0_hidden, int64_t tile_points) {
  std::ostringstream key;
  key << "L=" << L;
  for (const auto& w : weights) key << " " << w.size(0) << "x" << w.size(1);
  // The candidates belong to the key: a lower SATCLIP_CPU_ISA later must not reuse a choice of
  // kernels it switched off.
  for (const Bf16Path p : choice.candidates) key << (p == choice.candidates.front() ? " (" : " ") << bf16_path_name(p);
  key << ")";
  Bf16Choices& c = bf16_choices();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.decided.find(key.str());
  if (it != c.decided.end()) return it->second.first;
  // Untimed (too few points to time, decided on a larger call; or the map is full): the first
  // candidate, this package's kernels where they run.
  const int64_t m = std::min<int64_t>(lonlat.size(0), 4096);
  if (c.decided.size() >= 64 || m < 256) return choice.candidates.front();
  const Tensor sample = rows(lonlat, 0, m);
  std::ostringstream why;
  why << key.str() << ":";
  Bf16Path best = choice.candidates.front();
  double best_t = 1e300;
  for (const Bf16Path p : choice.candidates) {
    const double t = best_seconds(
        [&] { encoder_forward_bf16_path(p, sample, L, weights, biases, w0_first, w0_hidden, tile_points); });
    why << (p == choice.candidates.front() ? " " : ", ") << bf16_path_name(p) << " " << t * 1e3 << " ms";
    if (t < best_t) best = p, best_t = t;
  }
  why << " per " << m << " points";
  return c.decided.emplace(key.str(), std::make_pair(best, why.str())).first->second.first;
}

Tensor location_encoder_forward(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                                double w0_first, double w0_hidden, int64_t tile_points, std::string_view precision) {
  const Precision p = parse_precision(precision, lonlat, "satclip::location_encoder_forward");
  if (p == Precision::kFloat32) {
    return encoder_forward_exact(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  }
  if (p == Precision::kBF16) {
    const Bf16GemmChoice choice = cpu_bf16_gemm_choice(isa_in_use() == kAvx512);
    const Bf16Path path = choice.measure
                              ? bf16_path_measured(choice, lonlat, L, weights, biases, w0_first, w0_hidden, tile_points)
                              : choice.path;
    return encoder_forward_bf16_path(path, lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  }
  // tf32 (only when the op is called directly: satclip.functional maps the CPU's tf32 to
  // float32) and float16: float32 GEMMs on rounded operands (no CPU here has FP16 GEMM units;
  // AVX512-FP16 would be a further path of the same shape as bf16's)
  return encoder_forward_rounded(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, p, false);
}

std::string bf16_choices_report() {
  Bf16Choices& c = bf16_choices();
  std::lock_guard<std::mutex> lock(c.mu);
  std::ostringstream out;
  for (const auto& [key, choice] : c.decided) out << "\n" << bf16_path_name(choice.first) << ": " << choice.second;
  return out.str();
}

// satclip::_cpu_isa(mode): "auto", "base", "avx2" or "avx512" set the instruction set ("" keeps
// it; one the CPU lacks is refused); returns the one in use (0 baseline x86-64, 1 AVX2 + FMA,
// 2 AVX-512), read by satclip.backend_info().
int64_t cpu_isa(std::string_view mode) {
  if (!mode.empty()) {
    const std::string m(mode);
    const int level = m == "auto" ? -1 : m == "base" ? int(kBase) : m == "avx2" ? int(kAvx2) : m == "avx512" ? int(kAvx512) : -2;
    SATCLIP_CHECK(level != -2, "satclip::_cpu_isa: mode must be auto, base, avx2 or avx512, got '", m, "'");
    SATCLIP_CHECK(level <= cpu_best_isa(), "SATCLIP_CPU_ISA=", m, ": this CPU lacks it (the best it runs is ",
                  cpu_best_isa() == kAvx512 ? "avx512" : cpu_best_isa() == kAvx2 ? "avx2" : "base", ")");
    g_isa.store(level);
  }
  return isa_in_use();
}

// satclip::_cpu_bf16_gemm(mode): which GEMMs precision="bf16" runs on the CPU, and why (satclip info).
// The int8 output's quantisation (common/quantize_int8.h); threads 0: torch's count.
std::tuple<Tensor, Tensor> quantize_int8(const Tensor& emb, int64_t threads_wanted) {
  const char* op = "satclip::quantize_int8";
  check_quantize_input(emb, op, DeviceType::CPU);
  SATCLIP_CHECK(threads_wanted >= 0, op, ": threads must be >= 0 (0: torch's count), got ", threads_wanted);
  const Tensor x = emb.size(1) <= 1 || emb.stride(1) == 1 ? emb : torch::stable::contiguous(emb);
  const int64_t n = x.size(0), d = x.size(1);
  Tensor codes = empty({n, d}, ScalarType::Char, x.device());
  Tensor scale = empty({n}, ScalarType::Float, x.device());
  if (n == 0) return {codes, scale};
  const int nthreads = threads_wanted > 0 ? static_cast<int>(threads_wanted) : threads();
  SATCLIP_CPU_CALL(quantize_int8, x.const_data_ptr<float>(), n, d, x.stride(0),
                   static_cast<int8_t*>(codes.mutable_data_ptr()), scale.mutable_data_ptr<float>(), nthreads);
  return {codes, scale};
}

std::string cpu_bf16_gemm(std::string_view mode) {
  if (!mode.empty()) set_cpu_bf16_gemm_mode(std::string(mode));
  const Bf16GemmChoice c = cpu_bf16_gemm_choice(isa_in_use() == kAvx512);
  return std::string(c.measure ? "measured" : bf16_path_name(c.path)) + "|" + c.why + bf16_choices_report();
}

}  // namespace
}  // namespace satclip

// The private ops take no tensor: their kernels are the composite ones (schemas.py defines them).
STABLE_TORCH_LIBRARY_IMPL(satclip, CompositeExplicitAutograd, m) {
  m.impl("_cpu_isa", TORCH_BOX(&satclip::cpu_isa));
  m.impl("_cpu_bf16_gemm", TORCH_BOX(&satclip::cpu_bf16_gemm));
}

STABLE_TORCH_LIBRARY_IMPL(satclip, CPU, m) {
  m.impl("spherical_harmonics", TORCH_BOX(&satclip::sh_forward_op));
  m.impl("spherical_harmonics_backward", TORCH_BOX(&satclip::sh_backward));
  m.impl("siren_layer", TORCH_BOX(&satclip::siren_layer));
  m.impl("siren_layer_backward", TORCH_BOX(&satclip::siren_layer_backward));
  m.impl("location_encoder_forward", TORCH_BOX(&satclip::location_encoder_forward));
  m.impl("iso_latitude_encoder_forward", TORCH_BOX(&satclip::iso_latitude_encoder_forward));
  m.impl("sh_siren_layer", TORCH_BOX(&satclip::sh_siren_layer));
  m.impl("quantize_int8", TORCH_BOX(&satclip::quantize_int8));
}

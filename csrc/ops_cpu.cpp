// ops_cpu.cpp -- torch glue for the CPU kernels: argument checks, allocation, dtype dispatch,
// run-time choice of the instruction set, and the registrations under the CPU dispatch key.
//
// The op schemas are defined once, in Python (satclip/ops/schemas.py), before this library is
// loaded; here we only register implementations. Every check names the argument and what
// was expected, because these messages reach users of satclip.functional directly.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

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

#include "cpu/kernels_cpu.h"
#include "cpu_bf16_gemm.h"
#include "tf32_scope.h"
#include "op_checks.h"

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

// Large outputs ([N, L*L] features) cost more to page in than to compute: first touch of
// fresh 4 KiB pages runs at ~0.25 ns/byte here, three times the kernel's own time at L = 40.
// Asking for transparent huge pages on the untouched, 2 MiB-aligned interior of the new
// buffer (advisory; ignored where THP is off) cuts that to ~0.06 ns/byte (measured: 640 MB in
// 38 ms instead of 180 ms). Below 256 MB the kernel's compaction stalls (defrag=madvise) cost
// more than they save (80 MB: 25-115 ms instead of 27 ms), so small buffers are left alone.
void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const size_t bytes = t.nbytes();
  if (bytes < (size_t(256) << 20)) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (p + kHuge - 1) & ~(kHuge - 1), hi = (p + bytes) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

at::Tensor sh_forward_op(const at::Tensor& lonlat, int64_t L, const std::optional<at::Tensor>& scale) {
  check_lonlat(lonlat, "satclip::spherical_harmonics", c10::DeviceType::CPU);
  check_degree(L, "satclip::spherical_harmonics");
  const at::Tensor s = check_sh_scale(scale, lonlat, L, "satclip::spherical_harmonics");
  const int64_t n = lonlat.size(0);
  at::Tensor out = at::empty({n, L * L}, lonlat.options());
  advise_huge_pages(out);
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_fwd_cpu", [&] {
    SATCLIP_CPU_CALL(sh_fwd<scalar_t>, lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0),
                     lonlat.stride(1), n, static_cast<int>(L), out.mutable_data_ptr<scalar_t>(),
                     ptr_or_null<scalar_t>(s), at::get_num_threads());
  });
  return out;
}

at::Tensor sh_forward(const at::Tensor& lonlat, int64_t L) { return sh_forward_op(lonlat, L, std::nullopt); }

at::Tensor sh_backward(const at::Tensor& grad, const at::Tensor& lonlat, int64_t L) {
  const char* op = "satclip::spherical_harmonics_backward";
  check_lonlat(lonlat, op, c10::DeviceType::CPU);
  check_degree(L, op);
  check_sh_grad(grad, lonlat, L, op);
  const int64_t n = lonlat.size(0);
  at::Tensor out = at::empty({n, 2}, lonlat.options());
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_bwd_cpu", [&] {
    SATCLIP_CPU_CALL(sh_bwd<scalar_t>, grad.const_data_ptr<scalar_t>(), grad.stride(0),
                     grad.stride(1), lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0),
                     lonlat.stride(1), n, static_cast<int>(L), out.mutable_data_ptr<scalar_t>(),
                     at::get_num_threads());
  });
  return out;
}

// z = x W^T + b through ATen's BLAS, then one fused pass: mask, w0, sin (and cos if asked).
std::tuple<at::Tensor, at::Tensor> siren_layer(const at::Tensor& x, const at::Tensor& weight,
                                               const at::Tensor& bias, double w0,
                                               const std::optional<at::Tensor>& mask,
                                               bool save_cos) {
  const char* op = "satclip::siren_layer";
  check_linear(x, weight, bias, op);
  const int64_t n = x.size(0), h = weight.size(0);
  at::Tensor m = checked_mask(mask, x, n, h, op);
  at::Tensor y = at::addmm(bias, x, weight.t());
  at::Tensor c = save_cos ? at::empty_like(y) : at::empty({0}, y.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "satclip_siren_cpu", [&] {
    SATCLIP_CPU_CALL(siren_epilogue<scalar_t>, y.mutable_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
                     static_cast<scalar_t>(w0), y.numel(),
                     save_cos ? c.mutable_data_ptr<scalar_t>() : nullptr, at::get_num_threads());
  });
  return {y, c};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> siren_layer_backward(
    const at::Tensor& grad_y, const at::Tensor& cos, const at::Tensor& x, const at::Tensor& weight,
    double w0, const std::optional<at::Tensor>& mask, bool need_grad_x) {
  const char* op = "satclip::siren_layer_backward";
  check_siren_backward(grad_y, cos, x, weight, op);
  at::Tensor m = checked_mask(mask, x, x.size(0), weight.size(0), op);
  at::Tensor gy = grad_y.contiguous(), cc = cos.contiguous();
  at::Tensor gz = at::empty_like(gy);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "satclip_siren_bwd_cpu", [&] {
    SATCLIP_CPU_CALL(siren_grad_epilogue<scalar_t>, gy.const_data_ptr<scalar_t>(),
                     cc.const_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
                     static_cast<scalar_t>(w0), gz.numel(), gz.mutable_data_ptr<scalar_t>(),
                     at::get_num_threads());
  });
  return {need_grad_x ? at::mm(gz, weight) : x.new_empty({0}), at::mm(gz.t(), x), gz.sum(0)};
}

// SH -> first sine layer. On the CPU the features of a call exist once (the encoder forward
// bounds them by chunking); the CUDA kernels keep them on chip.
at::Tensor sh_siren_layer(const at::Tensor& lonlat, int64_t L, const at::Tensor& weight, const at::Tensor& bias,
                          double w0, c10::string_view precision) {
  if (!check_sh_siren_layer(lonlat, L, weight, bias, precision, c10::DeviceType::CPU)) {
    return std::get<0>(siren_layer(sh_forward(lonlat, L), weight, bias, w0, std::nullopt, false));
  }
  const at::Tensor y = std::get<0>(siren_layer(round_operand(sh_forward(lonlat, L), Precision::kBF16),
                                               round_operand(weight, Precision::kBF16), bias, w0, std::nullopt, false));
  return y.to(at::kBFloat16);
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
void sine_layers_chunked(const at::Tensor& out, const std::vector<int64_t>& bounds, int64_t h0, First first,
                         at::TensorList weights, at::TensorList biases, double w0_first, double w0_hidden,
                         Gemm gemm) {
  const int64_t layers = static_cast<int64_t>(weights.size());
  int64_t c = 0, hmax = h0;
  for (size_t k = 0; k + 1 < bounds.size(); ++k) c = std::max(c, bounds[k + 1] - bounds[k]);
  for (int64_t i = 0; i + 1 < layers; ++i) hmax = std::max(hmax, weights[i].size(0));
  const at::Tensor act[2] = {at::empty({c * hmax}, out.options()), at::empty({c * hmax}, out.options())};
  const int threads = at::get_num_threads();
  for (size_t k = 0; k + 1 < bounds.size(); ++k) {
    const int64_t lo = bounds[k], m = bounds[k + 1] - lo;
    at::Tensor x = act[0].narrow(0, 0, m * h0).view({m, h0});
    first(lo, m, x);
    for (int64_t i = -1; i + 1 < layers; ++i) {  // i = -1: the first layer (pre-activation done)
      at::Tensor y = x;
      if (i >= 0) {
        const int64_t h = weights[i].size(0);
        y = act[(i + 1) % 2].narrow(0, 0, m * h).view({m, h});
        gemm(y, biases[i], x, weights[i]);
      }
      SATCLIP_CPU_CALL(siren_epilogue<scalar_t>, y.mutable_data_ptr<scalar_t>(), nullptr,
                       static_cast<scalar_t>(i < 0 ? w0_first : w0_hidden), y.numel(), nullptr, threads);
      x = y;
    }
    at::Tensor dst = out.slice(0, lo, lo + m);
    gemm(dst, biases[layers - 1], x, weights[layers - 1]);
  }
}

void addmm_into(at::Tensor& y, const at::Tensor& b, const at::Tensor& x, const at::Tensor& w) {
  at::addmm_out(y, b, x, w.t());
}

// The encoder from the coordinates over one workspace: SH of a chunk into a features buffer
// reused by every chunk, then the layers, `gemm` (see sine_layers_chunked) for each.
template <typename scalar_t, typename Gemm>
void encoder_from_sh(const at::Tensor& out, const at::Tensor& lonlat, int64_t L, at::TensorList weights,
                     at::TensorList biases, double w0_first, double w0_hidden, int64_t tile_points, Gemm gemm) {
  const int64_t n = lonlat.size(0);
  if (n == 0) return;
  const int64_t c = std::min(n, tile_points);
  const at::Tensor feats = at::empty({c, L * L}, lonlat.options());
  const int threads = at::get_num_threads();
  auto sh_chunk = [&](int64_t lo, int64_t m) {
    const at::Tensor pts = lonlat.slice(0, lo, lo + m);
    at::Tensor x = feats.narrow(0, 0, m);
    SATCLIP_CPU_CALL(sh_fwd<scalar_t>, pts.const_data_ptr<scalar_t>(), pts.stride(0), pts.stride(1), m,
                     static_cast<int>(L), x.mutable_data_ptr<scalar_t>(), nullptr, threads);
    return x;
  };
  std::vector<int64_t> bounds;
  for (int64_t lo = 0; lo < n; lo += c) bounds.push_back(lo);
  bounds.push_back(n);
  if (weights.size() == 1) {  // no sine layer: SH -> linear
    for (size_t k = 0; k + 1 < bounds.size(); ++k) {
      at::Tensor dst = out.slice(0, bounds[k], bounds[k + 1]);
      gemm(dst, biases[0], sh_chunk(bounds[k], bounds[k + 1] - bounds[k]), weights[0]);
    }
    return;
  }
  sine_layers_chunked<scalar_t>(
      out, bounds, weights[0].size(0),
      [&](int64_t lo, int64_t m, at::Tensor& y) { gemm(y, biases[0], sh_chunk(lo, m), weights[0]); },
      weights.slice(1), biases.slice(1), w0_first, w0_hidden, gemm);
}

// The exact encoder (float32 / float64).
at::Tensor encoder_forward_exact(const at::Tensor& lonlat, int64_t L, at::TensorList weights,
                                 at::TensorList biases, double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, c10::DeviceType::CPU);
  at::Tensor out = at::empty({lonlat.size(0), width}, lonlat.options());
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_encoder_cpu", [&] {
    encoder_from_sh<scalar_t>(out, lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, addmm_into);
  });
  return out;
}

// The encoder with its first layer factorised over latitude rows (satclip/nn/iso_latitude.py):
// points sorted into rows of one latitude (row_counts[r] points each, in order); the first
// layer's pre-activation of row r is lon_parts[row] @ row_weights[r] + b0, one small GEMM per
// row; chunks hold whole rows (about tile_points points; a longer row is a chunk of its own).
at::Tensor iso_latitude_encoder_forward(const at::Tensor& lon_parts, const at::Tensor& row_weights,
                                        at::IntArrayRef row_counts, at::TensorList weights, at::TensorList biases,
                                        double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_iso_latitude_encoder(lon_parts, row_weights, row_counts, weights, biases, tile_points,
                                                   c10::DeviceType::CPU);
  const int64_t n = lon_parts.size(0);
  at::Tensor out = at::empty({n, width}, lon_parts.options());
  if (n == 0) return out;
  std::vector<int64_t> row_start(row_counts.size() + 1, 0), bounds{0};
  for (size_t r = 0; r < row_counts.size(); ++r) {
    row_start[r + 1] = row_start[r] + row_counts[r];
    if (row_start[r + 1] - bounds.back() > tile_points && row_start[r] > bounds.back()) bounds.push_back(row_start[r]);
  }
  bounds.push_back(n);
  const at::Tensor b0 = biases[0];
  AT_DISPATCH_FLOATING_TYPES(lon_parts.scalar_type(), "satclip_iso_latitude_cpu", [&] {
    size_t r = 0;  // the first row of the chunk being written
    sine_layers_chunked<scalar_t>(
        out, bounds, row_weights.size(2),
        [&](int64_t lo, int64_t m, at::Tensor& y) {
          for (; r < row_counts.size() && row_start[r] < lo + m; ++r) {
            if (row_counts[r] == 0) continue;
            at::Tensor dst = y.narrow(0, row_start[r] - lo, row_counts[r]);
            at::addmm_out(dst, b0, lon_parts.narrow(0, row_start[r], row_counts[r]), row_weights[r]);
          }
        },
        weights, biases.slice(1), w0_first, w0_hidden, addmm_into);
  });
  return out;
}

// dst = src rounded to bf16 (nearest, ties to even, as torch's float -> bfloat16 conversion and
// round_operand), kept as float32: one pass, no bf16 buffer.
void round_to_bf16(const float* src, float* dst, int64_t n) {
  at::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      uint32_t u;
      std::memcpy(&u, src + i, sizeof u);
      const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
      const uint32_t r = nan ? (u | 0x00400000u) & 0xffff0000u : (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
      std::memcpy(dst + i, &r, sizeof r);
    }
  });
}

// precision="bf16" over the exact encoder's one workspace, in either of two ways that give the
// same numbers up to summation order: each GEMM's input is rounded to bf16 as it is handed over
// (the SH chunk, every sine layer's output: one conversion pass, in cache), the weights once per
// call; products, sums, bias, w0 and sine in float32. `mkl`: MKL's bf16 GEMM with a float32 result
// (cpu_bf16_gemm.h; bf16 instructions where the CPU has them); otherwise float32 GEMMs on the
// rounded values (a float32 copy of each bf16 operand), the fast path on a CPU whose float32 GEMM
// outruns its bf16 one (AVX512-BF16 without AMX, or AVX2 only).
at::Tensor encoder_forward_bf16(const at::Tensor& lonlat, int64_t L, at::TensorList weights, at::TensorList biases,
                                double w0_first, double w0_hidden, int64_t tile_points, bool mkl) {
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, c10::DeviceType::CPU);
  const int64_t n = lonlat.size(0), layers = static_cast<int64_t>(weights.size());
  at::Tensor out = at::empty({n, width}, lonlat.options());
  int64_t kmax = L * L;
  for (int64_t i = 0; i + 1 < layers; ++i) kmax = std::max(kmax, weights[i].size(0));
  const at::ScalarType operand = mkl ? at::kBFloat16 : at::kFloat;
  std::vector<at::Tensor> wr;
  for (const at::Tensor& w : weights) wr.push_back(w.to(at::kBFloat16).to(operand).contiguous());
  const at::Tensor xb = at::empty({std::min(n, tile_points) * kmax}, lonlat.options().dtype(operand));
  const GemmBf16Fn fn = mkl ? mkl_gemm_bf16() : nullptr;
  auto gemm = [&](at::Tensor& y, const at::Tensor& b, const at::Tensor& x, const at::Tensor& w) {
    const int64_t m = x.size(0), k = x.size(1), h = w.size(0);
    at::Tensor xr = xb.narrow(0, 0, m * k).view({m, k});
    if (!mkl) {
      round_to_bf16(x.contiguous().const_data_ptr<float>(), xr.mutable_data_ptr<float>(), m * k);
      at::addmm_out(y, b, xr, w.t());
      return;
    }
    xr.copy_(x);  // round to nearest even, as round_operand
    y.copy_(b.expand({m, h}));
    fn(kCblasRowMajor, kCblasNoTrans, kCblasTrans, static_cast<int>(m), static_cast<int>(h), static_cast<int>(k),
       1.0f, reinterpret_cast<const uint16_t*>(xr.const_data_ptr()), static_cast<int>(k),
       reinterpret_cast<const uint16_t*>(w.const_data_ptr()), static_cast<int>(k), 1.0f,
       y.mutable_data_ptr<float>(), static_cast<int>(y.stride(0)));
  };
  encoder_from_sh<float>(out, lonlat, L, wr, biases, w0_first, w0_hidden, tile_points, gemm);
  return out;
}

at::Tensor encoder_forward_rounded(const at::Tensor& lonlat, int64_t L, at::TensorList weights,
                                   at::TensorList biases, double w0_first, double w0_hidden, int64_t tile_points,
                                   c10::string_view precision) {
  if (precision == "bf16") {
    return encoder_forward_bf16(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, false);
  }
  return encoder_forward_chunked(
      lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, precision, c10::DeviceType::CPU, sh_forward,
      [](const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double w0) {
        return std::get<0>(siren_layer(x, w, b, w0, std::nullopt, false));
      });
}

// precision="bf16" in "auto" mode: which of the two GEMM paths is faster is a property of the
// machine (bf16 units, MKL's code paths) and the shape, not of the CPU flags alone: on an
// AVX512-BF16 CPU without AMX, MKL's bf16 GEMM ran at 0.6-0.9x the float32 GEMM here. So both
// paths are timed once per shape, on the first call's first points (best of two runs each), and
// the faster is kept (bounded map; satclip info lists the choices).
struct Bf16Choices {
  std::mutex mu;
  std::map<std::string, std::pair<bool, std::string>> decided;
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

bool bf16_mkl_measured(const at::Tensor& lonlat, int64_t L, at::TensorList weights, at::TensorList biases,
                       double w0_first, double w0_hidden, int64_t tile_points) {
  std::ostringstream key;
  key << "L=" << L;
  for (const auto& w : weights) key << " " << w.size(0) << "x" << w.size(1);
  Bf16Choices& c = bf16_choices();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.decided.find(key.str());
  if (it != c.decided.end()) return it->second.first;
  if (c.decided.size() >= 64) return false;  // bounded: untimed, the float32 GEMMs
  const int64_t m = std::min<int64_t>(lonlat.size(0), 4096);
  if (m < 256) return false;  // too few points to time; decided on a larger call
  const at::Tensor sample = lonlat.slice(0, 0, m);
  const double t_mkl = best_seconds(
      [&] { encoder_forward_bf16(sample, L, weights, biases, w0_first, w0_hidden, tile_points, true); });
  const double t_rounded = best_seconds(
      [&] { encoder_forward_rounded(sample, L, weights, biases, w0_first, w0_hidden, tile_points, "bf16"); });
  std::ostringstream why;
  why << key.str() << ": mkl " << t_mkl * 1e3 << " ms, rounded " << t_rounded * 1e3 << " ms per " << m << " points";
  return c.decided.emplace(key.str(), std::make_pair(t_mkl < t_rounded, why.str())).first->second.first;
}

at::Tensor location_encoder_forward(const at::Tensor& lonlat, int64_t L, at::TensorList weights,
                                    at::TensorList biases, double w0_first, double w0_hidden,
                                    int64_t tile_points, c10::string_view precision) {
  const Precision p = parse_precision(precision, lonlat, "satclip::location_encoder_forward");
  if (p == Precision::kFloat32) {
    return encoder_forward_exact(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  }
  if (p == Precision::kBF16) {
    const Bf16GemmChoice choice = cpu_bf16_gemm_choice();
    const bool mkl = choice.measure
                         ? bf16_mkl_measured(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points)
                         : choice.mkl;
    if (mkl) return encoder_forward_bf16(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, true);
  }
  return encoder_forward_rounded(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, precision);
}

std::string bf16_choices_report() {
  Bf16Choices& c = bf16_choices();
  std::lock_guard<std::mutex> lock(c.mu);
  std::ostringstream out;
  for (const auto& [key, choice] : c.decided) out << "\n" << (choice.first ? "mkl" : "rounded") << ": " << choice.second;
  return out.str();
}

// 1 when the AVX2+FMA kernels run, 0 for the baseline build; read by satclip.backend_info().
// satclip::_cpu_isa(mode): "auto", "base", "avx2" or "avx512" set the instruction set ("" keeps
// it; one the CPU lacks is refused); returns the one in use (0 baseline x86-64, 1 AVX2 + FMA,
// 2 AVX-512).
int64_t cpu_isa(c10::string_view mode) {
  if (!mode.empty()) {
    const std::string m(mode);
    const int level = m == "auto" ? -1 : m == "base" ? int(kBase) : m == "avx2" ? int(kAvx2) : m == "avx512" ? int(kAvx512) : -2;
    TORCH_CHECK(level != -2, "satclip::_cpu_isa: mode must be auto, base, avx2 or avx512, got '", m, "'");
    TORCH_CHECK(level <= cpu_best_isa(), "SATCLIP_CPU_ISA=", m, ": this CPU lacks it (the best it runs is ",
                cpu_best_isa() == kAvx512 ? "avx512" : cpu_best_isa() == kAvx2 ? "avx2" : "base", ")");
    g_isa.store(level);
  }
  return isa_in_use();
}

}  // namespace
}  // namespace satclip

// Test hook of tf32_scope.h (used by the CUDA encoder): whether cuBLAS TF32 is on inside a scope,
// and whether it is after it (tests/ops/test_tf32_scope.py checks the user's setting comes back).
static std::string tf32_scope_check(bool on) {
  bool inside = false;
  {
    const satclip::Tf32Scope scope(on);
    inside = satclip::Tf32Scope::tf32_now();
  }
  return std::string(inside ? "tf32" : "ieee") + "|" + (satclip::Tf32Scope::tf32_now() ? "tf32" : "ieee");
}

TORCH_LIBRARY_FRAGMENT(satclip, m) {
  m.def("_cpu_isa(str mode=\"\") -> int", &satclip::cpu_isa);
  m.def("_tf32_scope_check(bool on) -> str", &tf32_scope_check);
  // Which GEMMs precision="bf16" runs on the CPU, and why (satclip info).
  m.def("_cpu_bf16_gemm(str mode=\"\") -> str", [](c10::string_view mode) {
    if (!mode.empty()) satclip::set_cpu_bf16_gemm_mode(std::string(mode));
    const satclip::Bf16GemmChoice c = satclip::cpu_bf16_gemm_choice();
    return std::string(c.measure ? "measured" : c.mkl ? "mkl" : "rounded") + "|" + c.why + satclip::bf16_choices_report();
  });
}

TORCH_LIBRARY_IMPL(satclip, CPU, m) {
  m.impl("spherical_harmonics", &satclip::sh_forward_op);
  m.impl("spherical_harmonics_backward", &satclip::sh_backward);
  m.impl("siren_layer", &satclip::siren_layer);
  m.impl("siren_layer_backward", &satclip::siren_layer_backward);
  m.impl("location_encoder_forward", &satclip::location_encoder_forward);
  m.impl("iso_latitude_encoder_forward", &satclip::iso_latitude_encoder_forward);
  m.impl("sh_siren_layer", &satclip::sh_siren_layer);
}

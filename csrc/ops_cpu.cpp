// ops_cpu.cpp -- torch glue for the CPU kernels: argument checks, allocation, dtype dispatch,
// run-time choice of the instruction set, and the registrations under the CPU dispatch key.
//
// The op schemas are defined once, in Python (satclip/_ops.py), before this library is
// loaded; here we only register implementations. Every check names the argument and what
// was expected, because these messages reach users of satclip.functional directly.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu/kernels_cpu.h"

namespace satclip {
namespace {

bool use_avx2() {
  static const bool v = [] {
    const char* env = std::getenv("SATCLIP_CPU_ISA");
    if (env && std::strcmp(env, "base") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return v;
}

// One place that forwards to the kernels of the chosen instruction set.
#define SATCLIP_CPU_CALL(fn, ...)                 \
  do {                                            \
    if (use_avx2()) {                             \
      kernels::avx2::fn(__VA_ARGS__);             \
    } else {                                      \
      kernels::base::fn(__VA_ARGS__);             \
    }                                             \
  } while (0)

// Large outputs ([N, L*L] features) cost more to page in than to compute: first touch of
// fresh 4 KiB pages runs at ~0.25 ns/byte here, three times the kernel's own time at L = 40.
// Asking for transparent huge pages on the untouched, 2 MiB-aligned interior of the new
// buffer (advisory; ignored where THP is off) cuts that cost about threefold.
void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const size_t bytes = t.nbytes();
  if (bytes < 4 * kHuge) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (p + kHuge - 1) & ~(kHuge - 1), hi = (p + bytes) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

void check_lonlat(const at::Tensor& lonlat, const char* op) {
  TORCH_CHECK(lonlat.dim() == 2 && lonlat.size(1) == 2, op,
              ": expected lonlat of shape [N, 2] (lon, lat in degrees), got ", lonlat.sizes());
  TORCH_CHECK(lonlat.scalar_type() == at::kFloat || lonlat.scalar_type() == at::kDouble, op,
              ": expected lonlat of dtype float32 or float64, got ", lonlat.scalar_type());
  TORCH_CHECK(lonlat.device().is_cpu(), op, ": expected a CPU tensor, got ", lonlat.device());
}

void check_degree(int64_t L, const char* op) {
  TORCH_CHECK(L >= 0 && L <= 4096, op, ": legendre_polys must be in [0, 4096], got ", L);
}

at::Tensor sh_forward(const at::Tensor& lonlat, int64_t L) {
  check_lonlat(lonlat, "satclip::spherical_harmonics");
  check_degree(L, "satclip::spherical_harmonics");
  const int64_t n = lonlat.size(0);
  at::Tensor out = at::empty({n, L * L}, lonlat.options());
  advise_huge_pages(out);
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_fwd_cpu", [&] {
    SATCLIP_CPU_CALL(sh_fwd<scalar_t>, lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0),
                     lonlat.stride(1), n, static_cast<int>(L), out.mutable_data_ptr<scalar_t>(),
                     at::get_num_threads());
  });
  return out;
}

at::Tensor sh_backward(const at::Tensor& grad, const at::Tensor& lonlat, int64_t L) {
  check_lonlat(lonlat, "satclip::spherical_harmonics_backward");
  check_degree(L, "satclip::spherical_harmonics_backward");
  const int64_t n = lonlat.size(0);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == n && grad.size(1) == L * L,
              "satclip::spherical_harmonics_backward: expected grad of shape [", n, ", ", L * L,
              "], got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == lonlat.scalar_type(),
              "satclip::spherical_harmonics_backward: grad dtype ", grad.scalar_type(),
              " differs from lonlat dtype ", lonlat.scalar_type());
  at::Tensor out = at::empty({n, 2}, lonlat.options());
  AT_DISPATCH_FLOATING_TYPES(lonlat.scalar_type(), "satclip_sh_bwd_cpu", [&] {
    SATCLIP_CPU_CALL(sh_bwd<scalar_t>, grad.const_data_ptr<scalar_t>(), grad.stride(0),
                     grad.stride(1), lonlat.const_data_ptr<scalar_t>(), lonlat.stride(0),
                     lonlat.stride(1), n, static_cast<int>(L), out.mutable_data_ptr<scalar_t>(),
                     at::get_num_threads());
  });
  return out;
}

void check_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const char* op) {
  TORCH_CHECK(x.dim() == 2, op, ": expected x of shape [N, in], got ", x.sizes());
  TORCH_CHECK(w.dim() == 2 && w.size(1) == x.size(1), op, ": expected weight of shape [out, ",
              x.size(1), "], got ", w.sizes());
  TORCH_CHECK(b.dim() == 1 && b.size(0) == w.size(0), op, ": expected bias of shape [", w.size(0),
              "], got ", b.sizes());
  TORCH_CHECK(x.scalar_type() == w.scalar_type() && x.scalar_type() == b.scalar_type(), op,
              ": x, weight and bias must share one dtype, got ", x.scalar_type(), ", ",
              w.scalar_type(), ", ", b.scalar_type());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": expected float32 or float64, got ", x.scalar_type());
}

at::Tensor checked_mask(const std::optional<at::Tensor>& mask, int64_t rows, int64_t cols,
                        at::ScalarType dtype, const char* op) {
  if (!mask.has_value()) return at::Tensor();
  TORCH_CHECK(mask->dim() == 2 && mask->size(0) == rows && mask->size(1) == cols, op,
              ": expected mask of shape [", rows, ", ", cols, "], got ", mask->sizes());
  TORCH_CHECK(mask->scalar_type() == dtype, op, ": mask dtype ", mask->scalar_type(),
              " differs from x dtype ", dtype);
  return mask->contiguous();
}

template <typename scalar_t>
const scalar_t* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<scalar_t>() : nullptr;
}

// z = x W^T + b through ATen's BLAS, then one fused pass: mask, w0, sin (and cos if asked).
std::tuple<at::Tensor, at::Tensor> siren_layer(const at::Tensor& x, const at::Tensor& weight,
                                               const at::Tensor& bias, double w0,
                                               const std::optional<at::Tensor>& mask,
                                               bool save_cos) {
  const char* op = "satclip::siren_layer";
  check_linear(x, weight, bias, op);
  const int64_t n = x.size(0), h = weight.size(0);
  at::Tensor m = checked_mask(mask, n, h, x.scalar_type(), op);
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
    double w0, const std::optional<at::Tensor>& mask) {
  const char* op = "satclip::siren_layer_backward";
  TORCH_CHECK(weight.dim() == 2 && x.dim() == 2, op, ": expected x [N, in] and weight [out, in]");
  const int64_t n = x.size(0), h = weight.size(0);
  TORCH_CHECK(grad_y.sizes() == at::IntArrayRef({n, h}) && cos.sizes() == grad_y.sizes(), op,
              ": expected grad_y and cos of shape [", n, ", ", h, "], got ", grad_y.sizes(), " and ",
              cos.sizes());
  at::Tensor m = checked_mask(mask, n, h, x.scalar_type(), op);
  at::Tensor gy = grad_y.contiguous(), cc = cos.contiguous();
  at::Tensor gz = at::empty_like(gy);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "satclip_siren_bwd_cpu", [&] {
    SATCLIP_CPU_CALL(siren_grad_epilogue<scalar_t>, gy.const_data_ptr<scalar_t>(),
                     cc.const_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
                     static_cast<scalar_t>(w0), gz.numel(), gz.mutable_data_ptr<scalar_t>(),
                     at::get_num_threads());
  });
  return {at::mm(gz, weight), at::mm(gz.t(), x), gz.sum(0)};
}

// Inference of the whole encoder: SH for a chunk of points, straight into the first GEMM;
// the [N, L*L] feature matrix only ever exists for one chunk.
at::Tensor location_encoder_forward(const at::Tensor& lonlat, int64_t L, at::TensorList weights,
                                    at::TensorList biases, double w0_first, double w0_hidden,
                                    int64_t chunk_size) {
  const char* op = "satclip::location_encoder_forward";
  check_lonlat(lonlat, op);
  check_degree(L, op);
  TORCH_CHECK(!weights.empty() && weights.size() == biases.size(), op,
              ": expected as many biases as weights (at least one layer), got ", weights.size(),
              " weights and ", biases.size(), " biases");
  TORCH_CHECK(weights[0].dim() == 2 && weights[0].size(1) == L * L, op,
              ": the first weight must be [hidden, ", L * L, "] for legendre_polys=", L, ", got ",
              weights[0].sizes());
  TORCH_CHECK(chunk_size > 0, op, ": chunk_size must be positive, got ", chunk_size);
  const int64_t n = lonlat.size(0);
  const int64_t out_dim = weights.back().size(0);
  at::Tensor out = at::empty({n, out_dim}, lonlat.options());
  std::vector<at::Tensor> wt;  // transposed views, made once
  for (size_t i = 0; i < weights.size(); ++i) {
    check_linear(i == 0 ? at::empty({0, L * L}, lonlat.options())
                        : at::empty({0, weights[i - 1].size(0)}, lonlat.options()),
                 weights[i], biases[i], op);
    wt.push_back(weights[i].t());
  }
  for (int64_t lo = 0; lo < n; lo += chunk_size) {
    const int64_t hi = std::min(n, lo + chunk_size);
    at::Tensor h = sh_forward(lonlat.slice(0, lo, hi), L);
    for (size_t i = 0; i + 1 < weights.size(); ++i) {
      h = std::get<0>(siren_layer(h, weights[i], biases[i], i == 0 ? w0_first : w0_hidden,
                                  std::nullopt, false));
    }
    at::Tensor dst = out.slice(0, lo, hi);
    at::addmm_out(dst, biases.back(), h, wt.back());
  }
  return out;
}

// 1 when the AVX2+FMA kernels run, 0 for the baseline build; read by satclip.backend_info().
int64_t cpu_isa() { return use_avx2() ? 1 : 0; }

}  // namespace
}  // namespace satclip

TORCH_LIBRARY_FRAGMENT(satclip, m) { m.def("_cpu_isa() -> int", &satclip::cpu_isa); }

TORCH_LIBRARY_IMPL(satclip, CPU, m) {
  m.impl("spherical_harmonics", &satclip::sh_forward);
  m.impl("spherical_harmonics_backward", &satclip::sh_backward);
  m.impl("siren_layer", &satclip::siren_layer);
  m.impl("siren_layer_backward", &satclip::siren_layer_backward);
  m.impl("location_encoder_forward", &satclip::location_encoder_forward);
}

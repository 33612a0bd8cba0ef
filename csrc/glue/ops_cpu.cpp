// ops_cpu.cpp -- torch glue for the CPU kernels: argument checks, allocation, dtype dispatch,
// run-time choice of the instruction set, and the registrations under the CPU dispatch key (the
// encoder's own ops are in encoder_cpu.cpp).
// LibTorch's stable ABI only (stable_tensor.h): this library loads in every torch from 2.11 on.
//
// The op schemas are defined once, in Python (satclip/ops/schemas.py), before this library is
// loaded; here we only register implementations. Every check names the argument and what
// was expected, because these messages reach users of satclip.functional directly.
#include <atomic>
#include <cstdint>
#include <string>

#include "cpu_isa.h"
#include "huge_pages.h"
#include "op_checks.h"
#include "operand_rounding_cpu.h"
#include "precision.h"

namespace satclip {
namespace {

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

}  // namespace

int isa_in_use() {
  const int forced = g_isa.load(std::memory_order_relaxed);
  return forced < 0 ? cpu_best_isa() : forced;
}

namespace {

// a @ b into a new tensor.
Tensor mm(const Tensor& a, const Tensor& b) {
  Tensor out = empty_like_shape({a.size(0), b.size(1)}, a);
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu_mm_out(out.get(), a.get(), b.get()));
  return out;
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

// SH -> first sine layer. On the CPU the features of a call exist once (the encoder forward
// bounds them by chunking); the CUDA kernels keep them on chip.
Tensor sh_siren_layer(const Tensor& lonlat, int64_t L, const Tensor& weight, const Tensor& bias, double w0,
                      std::string_view precision) {
  if (!check_sh_siren_layer(lonlat, L, weight, bias, precision, DeviceType::CPU)) {
    return std::get<0>(siren_layer(sh_forward(lonlat, L), weight, bias, w0, std::nullopt, false));
  }
  const Tensor y = std::get<0>(siren_layer(round_operand(sh_forward(lonlat, L), Precision::kBf16),
                                           round_operand(weight, Precision::kBf16), bias, w0, std::nullopt, false));
  return torch::stable::to(y, ScalarType::BFloat16);
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

}  // namespace
}  // namespace satclip

// The private ops take no tensor: their kernels are the composite ones (schemas.py defines them).
STABLE_TORCH_LIBRARY_IMPL(satclip, CompositeExplicitAutograd, m) {
  m.impl("_cpu_isa", TORCH_BOX(&satclip::cpu_isa));
}

STABLE_TORCH_LIBRARY_IMPL(satclip, CPU, m) {
  m.impl("spherical_harmonics", TORCH_BOX(&satclip::sh_forward_op));
  m.impl("spherical_harmonics_backward", TORCH_BOX(&satclip::sh_backward));
  m.impl("siren_layer", TORCH_BOX(&satclip::siren_layer));
  m.impl("siren_layer_backward", TORCH_BOX(&satclip::siren_layer_backward));
  m.impl("sh_siren_layer", TORCH_BOX(&satclip::sh_siren_layer));
  m.impl("quantize_int8", TORCH_BOX(&satclip::quantize_int8));
}

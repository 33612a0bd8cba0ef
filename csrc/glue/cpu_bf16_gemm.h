// cpu_bf16_gemm.h -- the CPU's bf16 GEMM with a float32 result (bf16 operands, float32 products
// and sums: what precision="bf16" promises) and the choice of whether the encoder uses it.
//
// torch has no CPU kernel for such a GEMM (aten::mm.dtype is CUDA-only through 2.14, and
// aten::mm on bf16 tensors rounds its result to bf16), but libtorch_cpu carries MKL, statically
// linked, and exports its cblas_gemm_bf16bf16f32 (LP64: int sizes), which runs on AVX512-BF16 /
// AMX where the CPU has them and converts to float32 otherwise. It is looked up at run time, so
// this library still loads against a torch without MKL; the mode then keeps float32 GEMMs on
// bf16-rounded operands (same numbers up to summation order).
#pragma once

#include "stable_tensor.h"
#include <dlfcn.h>

#include <cstdint>
#include <mutex>
#include <string>

namespace satclip {

using GemmBf16Fn = void (*)(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                            const uint16_t* a, int lda, const uint16_t* b, int ldb, float beta, float* c, int ldc);
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111, kCblasTrans = 112;

// MKL's cblas_gemm_bf16bf16f32 from the loaded torch, or nullptr.
inline GemmBf16Fn mkl_gemm_bf16() {
  static const GemmBf16Fn fn = []() -> GemmBf16Fn {
    void* sym = nullptr;
    if (void* h = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD)) sym = dlsym(h, "cblas_gemm_bf16bf16f32");
    if (sym == nullptr) sym = dlsym(RTLD_DEFAULT, "cblas_gemm_bf16bf16f32");
    return reinterpret_cast<GemmBf16Fn>(sym);
  }();
  return fn;
}

inline bool cpu_has_bf16_instructions() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}

// Whether the CPU encoder's bf16 mode runs MKL's bf16 GEMMs, and why. The mode (set by
// satclip.ops.switches from SATCLIP_CPU_BF16_GEMM through satclip::_cpu_bf16_gemm): "auto"
// (default): where the CPU has bf16 instructions, both paths are timed once per shape and the
// faster kept (`measure`; ops_cpu.cpp); without them the float32 GEMMs on rounded operands (there
// MKL's bf16 GEMM converts to float32 and gains nothing); "mkl" (wherever MKL has it, e.g. to test
// the path), "rounded" (float32 GEMMs on rounded operands).
struct Bf16GemmChoice {
  bool mkl;      // the path when not measured
  bool measure;  // time both paths per shape and keep the faster
  std::string why;
};

inline std::mutex& bf16_mode_mutex() {
  static std::mutex mu;
  return mu;
}

inline std::string& bf16_mode() {
  static std::string mode = "auto";
  return mode;
}

inline void set_cpu_bf16_gemm_mode(const std::string& mode) {
  SATCLIP_CHECK(mode == "auto" || mode == "mkl" || mode == "rounded",
                "satclip::_cpu_bf16_gemm: mode must be auto, mkl or rounded, got '", mode, "'");
  std::lock_guard<std::mutex> lock(bf16_mode_mutex());
  bf16_mode() = mode;
}

inline Bf16GemmChoice cpu_bf16_gemm_choice() {
  std::string mode;
  {
    std::lock_guard<std::mutex> lock(bf16_mode_mutex());
    mode = bf16_mode();
  }
  const bool have = mkl_gemm_bf16() != nullptr, hw = cpu_has_bf16_instructions();
  const std::string facts = std::string("MKL bf16 GEMM in torch: ") + (have ? "yes" : "no") +
                            "; CPU bf16 instructions (avx512_bf16 / amx_bf16): " + (hw ? "yes" : "no");
  if (mode == "rounded") return {false, false, "SATCLIP_CPU_BF16_GEMM=rounded; " + facts};
  if (mode == "mkl") {
    return {have, false,
            std::string(have ? "SATCLIP_CPU_BF16_GEMM=mkl; " : "SATCLIP_CPU_BF16_GEMM=mkl but unavailable; ") + facts};
  }
  return {false, have && hw, "auto; " + facts + (have && hw ? "; the faster path timed per shape" : "")};
}

}  // namespace satclip

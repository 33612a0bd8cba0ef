// cpu_bf16_gemm.h -- MKL's bf16 GEMM with a float32 result (bf16 operands, float32 products and
// sums: what precision="bf16" promises) and the choice of the GEMMs the CPU's bf16 mode runs.
//
// torch has no CPU kernel for such a GEMM (aten::mm.dtype is CUDA-only through 2.14, and
// aten::mm on bf16 tensors rounds its result to bf16), but libtorch_cpu carries MKL, statically
// linked, and exports its cblas_gemm_bf16bf16f32 (LP64: int sizes), which runs on AVX512-BF16 /
// AMX where the CPU has them and converts to float32 otherwise. It is looked up at run time, so
// this library still loads against a torch without MKL; the mode then keeps float32 GEMMs on
// bf16-rounded operands (same numbers up to summation order).
#pragma once

#include "../common/timed_choice.h"
#include "stable_tensor.h"
#include <dlfcn.h>

#include <cstdint>
#include <string>
#include <vector>

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

inline bool cpu_has_avx512bf16() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

inline bool cpu_has_bf16_instructions() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}

// Which GEMMs the CPU encoder's bf16 mode runs, and why. Three paths, the same numbers up to
// float32 summation order: `avx512bf16`, this package's kernels (cpu/encoder_bf16_avx512.h:
// VDPBF16PS, the whole encoder per block of points in cache), where the CPU has AVX512-BF16 and
// the AVX-512 kernels run; `mkl`, MKL's bf16 GEMMs with a float32 result; `rounded`, float32 GEMMs
// on bf16-rounded operands. The mode (set by satclip.ops.switches from SATCLIP_CPU_BF16_GEMM
// through satclip::_cpu_bf16_gemm): "auto" (default): where the CPU has bf16 instructions, every
// path it can run is timed once per shape and the fastest kept (`measure`; encoder_cpu.cpp); without
// them the float32 GEMMs on rounded operands (there MKL's bf16 GEMM converts to float32 and gains
// nothing); or one path forced ("avx512bf16" and "mkl" fall back to "rounded", saying so, where
// they cannot run).
enum class Bf16Path { kRounded, kMkl, kAvx512Bf16 };

inline const char* bf16_path_name(Bf16Path p) {
  return p == Bf16Path::kAvx512Bf16 ? "avx512bf16" : p == Bf16Path::kMkl ? "mkl" : "rounded";
}

struct Bf16GemmChoice {
  Bf16Path path;                    // the path when not measured
  bool measure;                     // time the candidates per shape and keep the fastest
  std::vector<Bf16Path> candidates; // what `measure` times
  std::string why;
};

// The bf16 mode's cache of timed path choices, and its mode (SATCLIP_CPU_BF16_GEMM; at most 64
// shapes timed).
inline TimedChoices& bf16_choices() {
  static TimedChoices c(64, {"auto", "avx512bf16", "mkl", "rounded"});
  return c;
}

inline void set_cpu_bf16_gemm_mode(const std::string& mode) {
  SATCLIP_CHECK(bf16_choices().set_mode(mode),
                "satclip::_cpu_bf16_gemm: mode must be auto, avx512bf16, mkl or rounded, got '", mode, "'");
}

// `avx512_kernels`: the AVX-512 kernels run (the CPU has them and SATCLIP_CPU_ISA does not ask
// for less), the condition of this package's AVX512-BF16 kernels beside the CPU flag.
inline Bf16GemmChoice cpu_bf16_gemm_choice(bool avx512_kernels) {
  const std::string mode = bf16_choices().mode();
  const bool have = mkl_gemm_bf16() != nullptr, hw = cpu_has_bf16_instructions();
  const bool native = cpu_has_avx512bf16() && avx512_kernels;
  const std::string facts = std::string("AVX512-BF16 kernels: ") +
                            (native ? "yes" : cpu_has_avx512bf16() ? "no (SATCLIP_CPU_ISA below avx512)" : "no (CPU lacks avx512_bf16)") +
                            "; MKL bf16 GEMM in torch: " + (have ? "yes" : "no") +
                            "; CPU bf16 instructions (avx512_bf16 / amx_bf16): " + (hw ? "yes" : "no");
  if (mode == "rounded") return {Bf16Path::kRounded, false, {}, "SATCLIP_CPU_BF16_GEMM=rounded; " + facts};
  if (mode == "mkl") {
    return {have ? Bf16Path::kMkl : Bf16Path::kRounded, false, {},
            std::string(have ? "SATCLIP_CPU_BF16_GEMM=mkl; " : "SATCLIP_CPU_BF16_GEMM=mkl but unavailable; ") + facts};
  }
  if (mode == "avx512bf16") {
    return {native ? Bf16Path::kAvx512Bf16 : Bf16Path::kRounded, false, {},
            std::string(native ? "SATCLIP_CPU_BF16_GEMM=avx512bf16; " : "SATCLIP_CPU_BF16_GEMM=avx512bf16 but unavailable; ") +
                facts};
  }
  std::vector<Bf16Path> candidates;
  if (native) candidates.push_back(Bf16Path::kAvx512Bf16);
  if (have && hw) candidates.push_back(Bf16Path::kMkl);
  if (candidates.empty()) return {Bf16Path::kRounded, false, {}, "auto; " + facts};
  candidates.push_back(Bf16Path::kRounded);
  return {candidates.front(), true, candidates, "auto; " + facts + "; the fastest path timed per shape"};
}

}  // namespace satclip

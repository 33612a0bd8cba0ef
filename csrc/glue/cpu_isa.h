// cpu_isa.h -- what the CPU glue files share: the instruction set the kernels run (the best the
// CPU has unless SATCLIP_CPU_ISA asks for less; glue/ops_cpu.cpp owns it), the call that forwards
// to that set's kernels, torch's thread count and its BLAS GEMM.
#pragma once

#include <torch/csrc/inductor/aoti_torch/generated/c_shim_cpu.h>

#include "../cpu/kernels_cpu.h"
#include "stable_tensor.h"

namespace satclip {

// The instruction sets the CPU kernels are built for, in order: each level needs the ones before.
enum IsaLevel : int { kBase = 0, kAvx2 = 1, kAvx512 = 2 };

// The level in use (glue/ops_cpu.cpp; satclip::_cpu_isa sets it).
int isa_in_use();

// One place that forwards to the kernels of the chosen instruction set.
#define SATCLIP_CPU_CALL(fn, ...)                   \
  do {                                              \
    switch (::satclip::isa_in_use()) {              \
      case ::satclip::kAvx512:                      \
        kernels::avx512::fn(__VA_ARGS__);           \
        break;                                      \
      case ::satclip::kAvx2:                        \
        kernels::avx2::fn(__VA_ARGS__);             \
        break;                                      \
      default:                                      \
        kernels::base::fn(__VA_ARGS__);             \
    }                                               \
  } while (0)

inline int threads() { return static_cast<int>(torch::stable::get_num_threads()); }

// y = x W^T + b (y may be a row block of a larger matrix), through torch's BLAS.
inline void addmm_into(Tensor& y, const Tensor& b, const Tensor& x, const Tensor& w) {
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu_addmm_out(y.get(), b.get(), x.get(), transposed(w).get(), 1.0, 1.0));
}

}  // namespace satclip

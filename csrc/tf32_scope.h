// tf32_scope.h -- cuBLAS TF32 math on or off for one scope, through the per-backend setting
// (Float32Backend::CUDA, Float32Op::MATMUL: torch.backends.cuda.matmul.fp32_precision), restored
// to the user's exact value afterwards. Not the legacy process-wide flag (setAllowTF32CuBLAS):
// restoring that one as a bool turned a user's "medium" into "high", and mixing it with the new
// API makes torch.get_float32_matmul_precision() raise ("used mix of the legacy and new APIs").
// ATen only: the CPU build compiles it too, so a CPU test checks the restore (_tf32_scope_check).
#pragma once

#include <ATen/Context.h>

namespace satclip {

class Tf32Scope {
 public:
  explicit Tf32Scope(bool on)
      : previous_(at::globalContext().float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL)) {
    set(on ? at::Float32Precision::TF32 : at::Float32Precision::IEEE);
  }
  ~Tf32Scope() { set(previous_); }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

  static bool tf32_now() {
    return at::globalContext().float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL) ==
           at::Float32Precision::TF32;
  }

 private:
  static void set(at::Float32Precision p) {
    at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, p);
  }
  at::Float32Precision previous_;
};

}  // namespace satclip

// fused_choice_cuda.cpp -- the CUDA encoder's choice between its fused kernels (the first layer
// from coordinates with the SH features on chip; the bf16 hidden layer with the sine in the
// epilogue) and cuBLAS + elementwise passes. Neither is known to win everywhere: hand-written
// kernels that save memory traffic against cuBLAS's tuned GEMMs, on chips and shapes not
// measured yet. So "auto" times both once per shape and keeps the faster.
#include "fused_choice_cuda.h"

#include <map>
#include <mutex>
#include <sstream>
#include <utility>

#include "../../cuda/sh_siren_layer.h"
#include "cuda_glue.h"

namespace satclip {
namespace cuda {
namespace {

struct Choices {
  std::mutex mu;
  std::string mode = "auto";  // set by satclip.ops.switches (SATCLIP_CUDA_FUSED) through _cuda_fused
  std::map<std::pair<int, std::string>, std::pair<bool, std::string>> decided;
};

Choices& choices() {
  static Choices c;
  return c;
}

void check_mode(const std::string& mode, const char* where) {
  SATCLIP_CHECK(mode == "auto" || mode == "fused" || mode == "cublas", where,
              " must be 'auto', 'fused' or 'cublas', got '", mode, "'");
}

std::string mode_locked(Choices& c) { return c.mode; }

// Milliseconds of one run of f on the stream, after a warm-up run (module loading, cuBLAS
// heuristics).
float time_once(const std::function<void()>& f, cudaStream_t stream) {
  f();
  cudaEvent_t e0, e1;
  SATCLIP_CUDA_CHECK(cudaEventCreate(&e0));
  SATCLIP_CUDA_CHECK(cudaEventCreate(&e1));
  float ms = 0;
  cudaError_t err = cudaEventRecord(e0, stream);
  if (err == cudaSuccess) {
    f();
    err = cudaEventRecord(e1, stream);
  }
  if (err == cudaSuccess) err = cudaEventSynchronize(e1);
  if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, e0, e1);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  SATCLIP_CUDA_CHECK(err);
  return ms;
}

// satclip::_cuda_fused(mode): sets the mode ("" keeps it) and reports it, then one line per
// choice "auto" has made.
std::string fused_mode(std::string_view mode) {
  Choices& c = choices();
  std::lock_guard<std::mutex> lock(c.mu);
  if (!mode.empty()) {
    check_mode(std::string(mode), "satclip::_cuda_fused: mode");
    c.mode = std::string(mode);
  }
  std::ostringstream out;
  out << mode_locked(c);
  for (const auto& [key, choice] : c.decided) {
    out << "\n" << (choice.first ? "fused" : "cublas") << ": " << choice.second;
  }
  return out.str();
}

}  // namespace

int64_t choice_rows_bucket(int64_t rows) {
  int64_t b = 1024;
  while (b < rows && b < (int64_t{1} << 62)) b *= 2;
  return b;
}

bool choose_fused(const Tensor& input, const std::string& shape, const std::function<void()>& fused,
                  const std::function<void()>& cublas) {
  Choices& c = choices();
  const auto key = std::make_pair(static_cast<int>(input.get_device_index()), shape);
  // The lock is held while timing: two threads meeting a new shape time it once, one after the
  // other's result, and never overlap their timed runs on the device.
  std::lock_guard<std::mutex> lock(c.mu);
  const std::string mode = mode_locked(c);
  if (mode != "auto") return mode == "fused";
  auto it = c.decided.find(key);
  if (it != c.decided.end()) return it->second.first;
  if (c.decided.size() >= kMaxChoices) return false;  // bounded: cuBLAS, untimed
  const cudaStream_t stream = stream_of(input);
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  SATCLIP_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return true;  // no timing inside a CUDA graph capture
  const float t_fused = time_once(fused, stream), t_cublas = time_once(cublas, stream);
  std::ostringstream why;
  why << shape << " on cuda:" << key.first << ": fused " << t_fused << " ms, cublas " << t_cublas << " ms";
  return c.decided.emplace(key, std::make_pair(t_fused <= t_cublas, why.str())).first->second.first;
}

}  // namespace cuda
}  // namespace satclip

namespace satclip {
namespace cuda {
namespace {

// satclip::_cuda_wmma_ld(ld): sets the bf16 kernels' shared-memory leading dimension (128 or
// 136; 0 keeps it) and returns it, so that one GPU run times both (benchmarks/gpu_steps.py).
int64_t wmma_ld_op(int64_t ld) {
  if (ld != 0) {
    SATCLIP_CHECK(kernels::set_wmma_ld(static_cast<int>(ld)), "satclip::_cuda_wmma_ld: ld must be 128 or 136, got ", ld);
  }
  return kernels::wmma_ld();
}

}  // namespace
}  // namespace cuda
}  // namespace satclip

// The private ops take no tensor: their kernels are the composite ones (schemas.py defines them).
STABLE_TORCH_LIBRARY_IMPL(satclip, CompositeExplicitAutograd, m) {
  m.impl("_cuda_fused", TORCH_BOX(&satclip::cuda::fused_mode));
  m.impl("_cuda_wmma_ld", TORCH_BOX(&satclip::cuda::wmma_ld_op));
}

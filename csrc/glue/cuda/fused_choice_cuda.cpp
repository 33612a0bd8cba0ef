// fused_choice_cuda.cpp -- the CUDA encoder's choice between its fused kernels (the first layer
// from coordinates with the SH features on chip; the bf16 hidden layer with the sine in the
// epilogue) and cuBLAS + elementwise passes. Neither is known to win everywhere: hand-written
// kernels that save memory traffic against cuBLAS's tuned GEMMs, on chips and shapes not
// measured yet. So "auto" times both once per shape and keeps the faster.
#include "fused_choice_cuda.h"

#include <optional>
#include <string>

#include "../../common/timed_choice.h"
#include "cuda_glue.h"

namespace satclip {
namespace cuda {
namespace {

// The timed choices and the mode (SATCLIP_CUDA_FUSED, set by satclip.ops.switches through
// _cuda_fused).
TimedChoices& choices() {
  static TimedChoices c(kMaxChoices, {"auto", "fused", "cublas"});
  return c;
}

// Milliseconds of one run of f on the stream, after a warm-up run (module loading, cuBLAS
// heuristics).
double time_once(const std::function<void()>& f, cudaStream_t stream) {
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

// satclip::_cuda_fused(mode): sets the mode ("" keeps it) and reports, as JSON (satclip.ops.extension
// reads it into a dict), the mode and every choice "auto" has made.
std::string fused_mode(std::string_view m) {
  if (!m.empty()) {
    const std::string s(m);
    SATCLIP_CHECK(choices().set_mode(s), "satclip::_cuda_fused: mode must be 'auto', 'fused' or 'cublas', got '", s,
                  "'");
  }
  const std::string value = choices().mode();
  const TimedChoiceReport r{value, value == "auto" ? "measured" : value,
                            "SATCLIP_CUDA_FUSED=" + value + ": the fused kernels or cuBLAS + elementwise passes",
                            choices().decisions()};
  return to_json(r);
}

}  // namespace

int64_t choice_rows_bucket(int64_t rows) {
  int64_t b = 1024;
  while (b < rows && b < (int64_t{1} << 62)) b *= 2;
  return b;
}

bool choose_fused(const Tensor& input, const std::string& shape, const std::function<void()>& fused,
                  const std::function<void()>& cublas) {
  const std::string m = choices().mode();
  if (m != "auto") return m == "fused";
  const cudaStream_t stream = stream_of(input);
  const std::string key = shape + " on cuda:" + std::to_string(input.get_device_index());
  if (const std::optional<int> known = choices().decided(key)) return *known == 0;
  // A new shape inside a CUDA graph capture is not timed: the fused kernels (no timing, no cache
  // entry); past kMaxChoices shapes, cuBLAS, untimed.
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  SATCLIP_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return true;
  const int i = choices().choose(
      key, {"fused", "cublas"}, [&](int c) { return time_once(c == 0 ? fused : cublas, stream); }, 1,
      "one chunk");
  return i == 0;
}

}  // namespace cuda
}  // namespace satclip

// The private op takes no tensor: its kernel is the composite one (schemas.py defines it).
STABLE_TORCH_LIBRARY_IMPL(satclip, CompositeExplicitAutograd, m) {
  m.impl("_cuda_fused", TORCH_BOX(&satclip::cuda::fused_mode));
}

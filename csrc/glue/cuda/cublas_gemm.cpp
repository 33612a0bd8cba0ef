// cublas_gemm.cpp -- the CUDA glue's access to torch (current stream, device guard: the stable C
// shim) and its GEMMs: cuBLAS through this library's own handle per device, on torch's current
// stream. The stable ABI offers no cuBLAS handle and no TF32 scope; owning the handle lets each
// GEMM state its own math (compute type), so the encoder's float32 mode stays exact whatever
// torch.backends.cuda.matmul says, without touching the user's setting.
#include <torch/csrc/inductor/aoti_torch/c/shim.h>

#include <array>
#include <mutex>

#include "../../cuda/siren_epilogue.h"
#include "cuda_glue.h"

namespace satclip {
namespace cuda {

cudaStream_t stream_of(const Tensor& t) {
  void* s = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(t.get_device_index(), &s));
  return static_cast<cudaStream_t>(s);
}

DeviceGuard::DeviceGuard(const Tensor& t) {
  CUDAGuardHandle h = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_create_cuda_guard(t.get_device_index(), &h));
  handle_ = h;
}

DeviceGuard::~DeviceGuard() { aoti_torch_delete_cuda_guard(static_cast<CUDAGuardHandle>(handle_)); }

namespace {

const char* cublas_error(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
  }
}

#define SATCLIP_CUBLAS_CHECK(expr)                                                                  \
  do {                                                                                              \
    const cublasStatus_t st_ = (expr);                                                              \
    SATCLIP_CHECK(st_ == CUBLAS_STATUS_SUCCESS, "satclip cuBLAS call failed: ", cublas_error(st_), \
                  " (", int(st_), ")");                                                             \
  } while (0)

// One handle per device, created on first use on that device (the caller's device guard makes it
// current) and kept for the process, with a workspace of its own: cuBLAS would otherwise take
// one from its default pool on the first GEMM, a cudaMalloc that CUDA graph capture refuses.
// Handle and workspace are made with the thread's capture mode relaxed, so the first GEMM may
// come inside a capture; 32 MiB is what cuBLAS asks for on Hopper.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

struct Handle {
  cublasHandle_t h = nullptr;
  void* workspace = nullptr;
};

const Handle& handle_for(int device) {
  static std::mutex mu;
  static std::array<Handle, 64> handles{};
  SATCLIP_CHECK(device >= 0 && device < 64, "satclip: CUDA device index ", device, " out of range");
  std::lock_guard<std::mutex> lock(mu);
  Handle& hd = handles[device];
  if (hd.h == nullptr) {
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    SATCLIP_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    cublasHandle_t h = nullptr;
    void* ws = nullptr;
    const cublasStatus_t st = cublasCreate(&h);
    const cudaError_t err = st == CUBLAS_STATUS_SUCCESS ? cudaMalloc(&ws, kWorkspaceBytes) : cudaSuccess;
    cudaThreadExchangeStreamCaptureMode(&mode);  // back to the caller's mode
    if (err != cudaSuccess && h != nullptr) cublasDestroy(h);
    SATCLIP_CUBLAS_CHECK(st);
    SATCLIP_CUDA_CHECK(err);
    hd = Handle{h, ws};
  }
  return hd;
}

cudaDataType_t data_type(ScalarType t) {
  switch (t) {
    case ScalarType::Float: return CUDA_R_32F;
    case ScalarType::Double: return CUDA_R_64F;
    case ScalarType::BFloat16: return CUDA_R_16BF;
    case ScalarType::Half: return CUDA_R_16F;
    default: SATCLIP_CHECK(false, "satclip: no cuBLAS GEMM for dtype ", t);
  }
  return CUDA_R_32F;
}

}  // namespace

void gemm_xwt(Tensor& y, const Tensor& x_in, const Tensor& w_in, bool accumulate, Math math) {
  const Tensor x = x_in.stride(1) == 1 ? x_in : torch::stable::contiguous(x_in);
  const Tensor w = w_in.stride(1) == 1 ? w_in : torch::stable::contiguous(w_in);
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  SATCLIP_CHECK(w.size(1) == k && y.size(0) == m && y.size(1) == n && y.stride(1) == 1,
                "satclip: GEMM shapes do not match: x ", sizes(x), ", w ", sizes(w), ", y ", sizes(y));
  if (m == 0 || n == 0) return;
  const ScalarType in = x.scalar_type(), out = y.scalar_type();
  const bool half_in = in == ScalarType::BFloat16 || in == ScalarType::Half;  // 16-bit operands, float32 result
  SATCLIP_CHECK(w.scalar_type() == in && (half_in ? out == ScalarType::Float : in == out),
                "satclip: GEMM dtypes: x ", in, ", w ", w.scalar_type(), ", y ", out);
  const Handle& hd = handle_for(x.get_device_index());
  cublasHandle_t h = hd.h;
  SATCLIP_CUBLAS_CHECK(cublasSetStream(h, stream_of(x)));
  SATCLIP_CUBLAS_CHECK(cublasSetWorkspace(h, hd.workspace, kWorkspaceBytes));  // setStream resets it
  // Row-major y [m, n] is column-major y^T [n, m] = (W [n, k] row-major, i.e. W^T col-major)^T x^T.
  const bool f64 = in == ScalarType::Double;
  const cublasComputeType_t compute =
      f64 ? CUBLAS_COMPUTE_64F : math == Math::kTF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const double alpha64 = 1.0, beta64 = accumulate ? 1.0 : 0.0;
  const float alpha32 = 1.0f, beta32 = accumulate ? 1.0f : 0.0f;
  const void* alpha = f64 ? static_cast<const void*>(&alpha64) : static_cast<const void*>(&alpha32);
  const void* beta = f64 ? static_cast<const void*>(&beta64) : static_cast<const void*>(&beta32);
  SATCLIP_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                    static_cast<int>(k), alpha, w.const_data_ptr(), data_type(in),
                                    static_cast<int>(w.stride(0)), x.const_data_ptr(), data_type(in),
                                    static_cast<int>(x.stride(0)), beta, y.mutable_data_ptr(), data_type(out),
                                    static_cast<int>(y.stride(0)), compute, CUBLAS_GEMM_DEFAULT));
}

void addmm_into(Tensor& y, const Tensor& b_in, const Tensor& x, const Tensor& w, Math math) {
  const Tensor b = torch::stable::contiguous(b_in);
  const cudaStream_t stream = stream_of(y);
  const int64_t m = y.size(0), n = y.size(1);
  dispatch_floating(y.scalar_type(), "satclip: addmm", [&](auto zero) {
    using scalar_t = decltype(zero);
    SATCLIP_CUDA_CHECK(kernels::launch_bias_rows<scalar_t>(b.const_data_ptr<scalar_t>(), m, n,
                                                           y.mutable_data_ptr<scalar_t>(), y.stride(0), stream));
  });
  gemm_xwt(y, x, w, true, math);
}

}  // namespace cuda
}  // namespace satclip

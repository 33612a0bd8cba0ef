// stable_tensor.h -- what the glue needs from torch, through LibTorch's stable ABI only
// (torch/csrc/stable, the AOTI C shim), so that one binary loads in every torch from the
// TORCH_TARGET_VERSION set in CMakeLists.txt (2.11) on. Nothing here includes ATen or c10.
//
// The stable API has no Scalar arguments and no operator overloads: what the glue computes
// itself (rounding, bias rows) is a plain loop; GEMMs are the AOTI shim's addmm_out / mm_out.
#pragma once

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace satclip {

using Tensor = torch::stable::Tensor;
using Device = torch::stable::Device;
using torch::headeronly::DeviceType;
using torch::headeronly::ScalarType;
using TensorList = std::vector<Tensor>;

// Devices print as torch prints them ("cpu", "cuda:0"); declared before cat() so it finds them.
inline const char* device_type_name(DeviceType t) {
  return t == DeviceType::CPU ? "cpu" : t == DeviceType::CUDA ? "cuda" : "other";
}
inline std::ostream& operator<<(std::ostream& o, const Device& d) {
  o << device_type_name(d.type());
  if (d.type() != DeviceType::CPU && d.index() >= 0) o << ":" << int(d.index());
  return o;
}

namespace detail {
template <typename... A>
std::string cat(const A&... a) {
  std::ostringstream s;
  (s << ... << a);
  return s.str();
}
}  // namespace detail

// A check whose message is exactly the words given (no file or line: they reach users of
// satclip.functional as a RuntimeError).
#define SATCLIP_CHECK(cond, ...)                                            \
  do {                                                                      \
    if (!(cond)) throw std::runtime_error(::satclip::detail::cat(__VA_ARGS__)); \
  } while (0)

// Printable sizes ("[3, 2]"), as torch prints them.
struct Sizes {
  std::vector<int64_t> v;
};
inline Sizes sizes(const Tensor& t) {
  const auto s = t.sizes();
  return {std::vector<int64_t>(s.begin(), s.end())};
}
inline std::ostream& operator<<(std::ostream& o, const Sizes& s) {
  o << "[";
  for (size_t i = 0; i < s.v.size(); ++i) o << (i ? ", " : "") << s.v[i];
  return o << "]";
}
inline bool operator==(const Sizes& a, const Sizes& b) { return a.v == b.v; }


inline Tensor empty(std::vector<int64_t> size, ScalarType dtype, const Device& device) {
  return torch::stable::empty(size, dtype, std::nullopt, device);
}
inline Tensor empty_like_shape(std::vector<int64_t> size, const Tensor& like) {
  return empty(std::move(size), like.scalar_type(), like.device());
}
// Rows [lo, lo + n) of t (a view).
inline Tensor rows(Tensor t, int64_t lo, int64_t n) { return torch::stable::narrow(t, 0, lo, n); }
inline Tensor transposed(const Tensor& t) { return torch::stable::transpose(t, 0, 1); }
inline Tensor view2d(const Tensor& flat, int64_t m, int64_t k) {
  Tensor head = rows(flat, 0, m * k);
  return torch::stable::view(head, {m, k});
}

// Runs f(float{}) or f(double{}) for a float32 / float64 dtype.
template <typename F>
void dispatch_floating(ScalarType t, const char* op, F&& f) {
  if (t == ScalarType::Float) {
    f(float{});
  } else if (t == ScalarType::Double) {
    f(double{});
  } else {
    SATCLIP_CHECK(false, op, ": expected float32 or float64, got ", t);
  }
}

template <typename T>
const T* ptr_or_null(const std::optional<Tensor>& t) {
  return t.has_value() ? t->const_data_ptr<T>() : nullptr;
}

}  // namespace satclip

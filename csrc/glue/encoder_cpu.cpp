// encoder_cpu.cpp -- satclip::location_encoder_forward and satclip::iso_latitude_encoder_forward on
// the CPU: backends of the one chunk driver (common/encoder_driver.h), and the bf16 mode's timed
// choice of GEMMs (common/timed_choice.h; the private op _cpu_bf16_gemm reports it).
//
// Backends:
//   CpuLayers     the layers as torch BLAS GEMMs + the SIREN epilogue kernel over one workspace
//                 per call: exact (float32 / float64), rounded operands (tf32, bf16, float16:
//                 float32 GEMMs on rounded copies) or MKL's bf16 GEMM (bf16 bit patterns,
//                 float32 result); SH features or the factorised first layer (iso-latitude rows).
//   avx512bf16    this package's AVX512-BF16 kernels run the same driver per block of 48 points
//                 in one thread's cache (cpu/encoder_bf16_avx512.cpp); the glue packs weights.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../common/encoder_driver.h"
#include "../common/timed_choice.h"
#include "../cpu/encoder_bf16_avx512.h"
#include "cpu_bf16_gemm.h"
#include "cpu_isa.h"
#include "operand_rounding_cpu.h"
#include "precision.h"

namespace satclip {
namespace {

// The layers on torch's BLAS over one workspace: two activation buffers (sized for the widest
// layer and the largest chunk) and, for a reduced precision, one operand buffer, allocated once and
// reused by every chunk. Fresh buffers per chunk are paged in again whenever they exceed glibc's
// mmap threshold (a 16,384-point chunk of 512 activations is 32 MB), which cost up to a quarter
// of the encoder's time.
template <typename scalar_t>
class CpuLayers {
 public:
  using Act = Tensor;
  // y = x W^T + b, x already in the operand format
  using Gemm = std::function<void(Tensor& y, const Tensor& b, const Tensor& x, const Tensor& w)>;
  // x into dst ([m * k] of the operand dtype) as an operand (a rounding pass); empty: x itself
  using ToOperand = std::function<void(const Tensor& x, Tensor& dst)>;
  // the factorised first layer's pre-activation of points [lo, lo + m) into y ([m, H0])
  using FirstLayer = std::function<void(int64_t lo, int64_t m, Tensor& y)>;

  // weights: the layers' weights in the operand format; biases: every layer's. With `first` (the
  // factorised first layer, of width h0), weights are those of the layers after the first.
  CpuLayers(const Tensor& out, const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
            double w0_first, double w0_hidden, int64_t chunk, Gemm gemm, ToOperand to_operand,
            ScalarType operand_dtype, FirstLayer first = {}, int64_t h0 = 0)
      : out_(out), lonlat_(lonlat), L_(L), weights_(weights), biases_(biases), w0_first_(w0_first),
        w0_hidden_(w0_hidden), gemm_(std::move(gemm)), to_operand_(std::move(to_operand)), first_(std::move(first)),
        h0_(h0), nthreads_(threads()) {
    int64_t hmax = first_ ? h0 : 0, kmax = first_ ? h0 : L * L;
    for (size_t i = 0; i + 1 < weights.size(); ++i) hmax = std::max(hmax, weights[i].size(0));
    kmax = std::max(kmax, hmax);
    if (!first_) features_ = empty_like_shape({chunk, L * L}, out);
    if (hmax > 0) act_[0] = empty_like_shape({chunk * hmax}, out), act_[1] = empty_like_shape({chunk * hmax}, out);
    if (to_operand_) operand_ = empty({chunk * kmax}, operand_dtype, out.device());
  }

  int layers() const { return static_cast<int>(weights_.size()) + (first_ ? 1 : 0); }
  bool fuses_first_layer() const { return static_cast<bool>(first_); }

  Act features(int64_t lo, int64_t m) {
    const Tensor pts = rows(lonlat_, lo, m);
    Tensor x = rows(features_, 0, m);
    SATCLIP_CPU_CALL(sh_fwd<scalar_t>, pts.const_data_ptr<scalar_t>(), pts.stride(0), pts.stride(1), m,
                     static_cast<int>(L_), x.mutable_data_ptr<scalar_t>(), nullptr, nthreads_);
    slot_ = 0;
    return operand(x);
  }

  Act first_layer(int64_t lo, int64_t m) {
    Tensor y = view2d(act_[0], m, h0_);
    first_(lo, m, y);
    sine(y, w0_first_);
    slot_ = 1;
    return operand(y);
  }

  Act sine_layer(int i, const Act& x) {
    const Tensor& w = weight(i);
    Tensor y = view2d(act_[slot_], x.size(0), w.size(0));
    slot_ ^= 1;
    gemm_(y, bias(i), x, w);
    sine(y, i == 0 ? w0_first_ : w0_hidden_);
    return operand(y);
  }

  void linear_out(int i, const Act& x, int64_t lo, int64_t m) {
    Tensor dst = rows(out_, lo, m);
    gemm_(dst, bias(i), x, weight(i));
  }

 private:
  const Tensor& weight(int i) const { return weights_[i - (first_ ? 1 : 0)]; }
  const Tensor& bias(int i) const { return biases_[i]; }

  void sine(Tensor& y, double w0) {
    SATCLIP_CPU_CALL(siren_epilogue<scalar_t>, y.mutable_data_ptr<scalar_t>(), nullptr, static_cast<scalar_t>(w0),
                     y.numel(), nullptr, nthreads_);
  }

  Act operand(const Tensor& x) {
    if (!to_operand_) return x;
    Tensor dst = view2d(operand_, x.size(0), x.size(1));
    to_operand_(x, dst);
    return dst;
  }

  Tensor out_, lonlat_;
  int64_t L_;
  const TensorList& weights_;
  const TensorList& biases_;
  double w0_first_, w0_hidden_;
  Gemm gemm_;
  ToOperand to_operand_;
  FirstLayer first_;
  int64_t h0_;
  int nthreads_;
  Tensor features_, act_[2], operand_;
  int slot_ = 0;
};

// The exact encoder (float32 / float64).
Tensor encoder_forward_exact(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                             double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CPU);
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, width}, lonlat);
  if (n == 0) return out;
  const std::vector<int64_t> bounds = driver::uniform_chunks(n, tile_points);
  dispatch_floating(lonlat.scalar_type(), "satclip::location_encoder_forward", [&](auto zero) {
    using scalar_t = decltype(zero);
    CpuLayers<scalar_t> be(out, lonlat, L, weights, biases, w0_first, w0_hidden, driver::largest_chunk(bounds),
                           addmm_into, {}, lonlat.scalar_type());
    driver::encode_chunks(be, bounds);
  });
  return out;
}

// A reduced precision (tf32, bf16, float16): each GEMM's input rounded to the mode's operand format
// as it is handed over (the SH chunk, every sine layer's output: one conversion pass, in cache),
// the weights once per call; products, sums, bias, w0 and sine in float32. Either float32 GEMMs on
// the rounded values (a float32 copy of each operand: exactly what a tensor core computes in that
// mode, and the fast path on a CPU whose float32 GEMM outruns its reduced-precision one), or, `mkl`
// (bf16 only), MKL's bf16 GEMM with a float32 result (cpu_bf16_gemm.h; bf16 instructions where the
// CPU has them). The two give the same numbers up to summation order.
Tensor encoder_forward_rounded(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                               double w0_first, double w0_hidden, int64_t tile_points, Precision precision, bool mkl) {
  SATCLIP_CHECK(!mkl || precision == Precision::kBf16, "satclip: MKL's reduced-precision GEMM is bf16's only");
  const RoundFn round = rounding_of(precision);
  SATCLIP_CHECK(round != nullptr, "satclip: no CPU operand rounding for precision '", precision_name(precision), "'");
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CPU);
  const int64_t n = lonlat.size(0);
  Tensor out = empty_like_shape({n, width}, lonlat);
  if (n == 0) return out;
  const ScalarType operand = mkl ? ScalarType::BFloat16 : ScalarType::Float;
  // The weights rounded once: bf16 bit patterns for MKL, rounded values kept float32 otherwise.
  auto to_operand = [&](const Tensor& x, Tensor& dst) {
    const Tensor src = torch::stable::contiguous(x);
    if (mkl) {
      round_to_bf16_bits(src.const_data_ptr<float>(), static_cast<uint16_t*>(dst.mutable_data_ptr()), src.numel());
    } else {
      round(src.const_data_ptr<float>(), dst.mutable_data_ptr<float>(), src.numel());
    }
  };
  TensorList wr;
  for (const Tensor& w : weights) {
    Tensor dst = empty({w.size(0), w.size(1)}, operand, w.device());
    to_operand(w, dst);
    wr.push_back(dst);
  }
  CpuLayers<float>::Gemm gemm = addmm_into;
  if (mkl) {
    const GemmBf16Fn fn = mkl_gemm_bf16();
    gemm = [fn](Tensor& y, const Tensor& b, const Tensor& x, const Tensor& w) {
      const int64_t m = x.size(0), k = x.size(1), h = w.size(0);
      float* yp = y.mutable_data_ptr<float>();
      const Tensor bc = torch::stable::contiguous(b);
      const float* bp = bc.const_data_ptr<float>();
      for (int64_t r = 0; r < m; ++r) std::memcpy(yp + r * y.stride(0), bp, sizeof(float) * h);  // beta = 1 below
      fn(kCblasRowMajor, kCblasNoTrans, kCblasTrans, static_cast<int>(m), static_cast<int>(h), static_cast<int>(k),
         1.0f, static_cast<const uint16_t*>(x.const_data_ptr()), static_cast<int>(k),
         static_cast<const uint16_t*>(w.const_data_ptr()), static_cast<int>(k), 1.0f, yp,
         static_cast<int>(y.stride(0)));
    };
  }
  const std::vector<int64_t> bounds = driver::uniform_chunks(n, tile_points);
  CpuLayers<float> be(out, lonlat, L, wr, biases, w0_first, w0_hidden, driver::largest_chunk(bounds), gemm, to_operand,
                      operand);
  driver::encode_chunks(be, bounds);
  return out;
}

// precision="bf16" on this package's AVX512-BF16 kernels (cpu/encoder_bf16_avx512.h): the
// weights rounded and packed once per call (bias padded), then every block of points through all
// layers in one thread's cache. Its own blocks of 48 points; tile_points does not apply.
Tensor encoder_forward_bf16_avx512(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                                   double w0_first, double w0_hidden, int64_t tile_points) {
  namespace nk = kernels::avx512bf16;
  const int64_t width = check_encoder(lonlat, L, weights, biases, tile_points, DeviceType::CPU);
  const int64_t n = lonlat.size(0), layers = static_cast<int64_t>(weights.size());
  Tensor out = empty_like_shape({n, width}, lonlat);
  std::vector<Tensor> keep;  // packed weights and padded biases, alive for the call
  std::vector<nk::PackedLayer> packed;
  for (int64_t i = 0; i < layers; ++i) {
    const Tensor w = torch::stable::contiguous(weights[i]), b = torch::stable::contiguous(biases[i]);
    const int64_t h = w.size(0), k = w.size(1);
    Tensor wp = empty({nk::packed_weight_size(h, k)}, ScalarType::BFloat16, lonlat.device());
    nk::pack_weight_bf16(w.const_data_ptr<float>(), k, h, k, static_cast<uint16_t*>(wp.mutable_data_ptr()));
    Tensor bp = empty({nk::padded_n(h)}, ScalarType::Float, lonlat.device());
    float* bd = bp.mutable_data_ptr<float>();
    std::memcpy(bd, b.const_data_ptr<float>(), sizeof(float) * h);
    std::fill(bd + h, bd + nk::padded_n(h), 0.0f);
    const bool last = i + 1 == layers;
    packed.push_back({static_cast<const uint16_t*>(wp.const_data_ptr()), bd, h, k,
                      static_cast<float>(i == 0 ? w0_first : w0_hidden), !last});
    keep.push_back(wp);
    keep.push_back(bp);
  }
  if (n > 0) {
    nk::encoder_forward(lonlat.const_data_ptr<float>(), lonlat.stride(0), lonlat.stride(1), n, static_cast<int>(L),
                        packed.data(), static_cast<int>(layers), out.mutable_data_ptr<float>(), out.stride(0), threads());
  }
  return out;
}

// precision="bf16" by one path (cpu_bf16_gemm.h).
Tensor encoder_forward_bf16_path(Bf16Path path, const Tensor& lonlat, int64_t L, const TensorList& weights,
                                 const TensorList& biases, double w0_first, double w0_hidden, int64_t tile_points) {
  if (path == Bf16Path::kAvx512Bf16) {
    return encoder_forward_bf16_avx512(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
  }
  return encoder_forward_rounded(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, Precision::kBf16,
                                 path == Bf16Path::kMkl);
}

// precision="bf16" in "auto" mode: which path is fastest is a property of the machine (bf16
// units, MKL's code paths) and the shape, not of the CPU flags alone: on an AVX512-BF16 CPU
// without AMX, MKL's bf16 GEMM ran at 0.6-0.9x the float32 GEMM here, and where AMX exists MKL's
// GEMMs may beat this package's kernels. So every candidate is timed once per shape, on the first
// call's first points (best of two runs each), and the fastest is kept (bf16_choices(),
// cpu_bf16_gemm.h).
double best_ms(const std::function<void()>& f) {
  double best = 1e300;
  for (int r = 0; r < 2; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

Bf16Path bf16_path_measured(const Bf16GemmChoice& choice, const Tensor& lonlat, int64_t L, const TensorList& weights,
                            const TensorList& biases, double w0_first, double w0_hidden, int64_t tile_points) {
  // Untimed (too few points to time, decided on a larger call): the first candidate, this
  // package's kernels where they run.
  const int64_t m = std::min<int64_t>(lonlat.size(0), 4096);
  std::ostringstream key;
  key << "L=" << L;
  for (const auto& w : weights) key << " " << w.size(0) << "x" << w.size(1);
  // The candidates belong to the key: a lower SATCLIP_CPU_ISA later must not reuse a choice of
  // kernels it switched off.
  std::vector<std::string> names;
  for (const Bf16Path p : choice.candidates) names.push_back(bf16_path_name(p));
  for (size_t i = 0; i < names.size(); ++i) key << (i == 0 ? " (" : " ") << names[i];
  key << ")";
  const Tensor sample = rows(lonlat, 0, m);
  const int i = bf16_choices().choose(
      key.str(), names,
      [&](int c) {
        if (m < 256) return -1.0;
        return best_ms([&] {
          encoder_forward_bf16_path(choice.candidates[c], sample, L, weights, biases, w0_first, w0_hidden, tile_points);
        });
      },
      0, std::to_string(m) + " points");
  return choice.candidates[i];
}

Tensor location_encoder_forward(const Tensor& lonlat, int64_t L, const TensorList& weights, const TensorList& biases,
                                double w0_first, double w0_hidden, int64_t tile_points, std::string_view precision) {
  const Precision p = parse_precision(precision, lonlat, "satclip::location_encoder_forward");
  switch (p) {  // no default: a new mode without a CPU backend warns here (-Wswitch)
    case Precision::kFloat32:
      return encoder_forward_exact(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
    case Precision::kBf16: {
      const Bf16GemmChoice choice = cpu_bf16_gemm_choice(isa_in_use() == kAvx512);
      const Bf16Path path = choice.measure ? bf16_path_measured(choice, lonlat, L, weights, biases, w0_first,
                                                                w0_hidden, tile_points)
                                           : choice.path;
      return encoder_forward_bf16_path(path, lonlat, L, weights, biases, w0_first, w0_hidden, tile_points);
    }
    case Precision::kTf32:  // only when the op is called directly: satclip.functional.plan maps the CPU's tf32 to float32
    case Precision::kFloat16:
      // float32 GEMMs on rounded operands (no CPU here has FP16 GEMM units; AVX512-FP16 would be
      // a further path of the same shape as bf16's)
      return encoder_forward_rounded(lonlat, L, weights, biases, w0_first, w0_hidden, tile_points, p, false);
  }
  SATCLIP_CHECK(false, "satclip::location_encoder_forward: no CPU backend for precision '", precision_name(p), "'");
  return {};
}

// The encoder with its first layer factorised over latitude rows (satclip/nn/iso_latitude.py):
// points sorted into rows of one latitude (row_counts[r] points each, in order); the first
// layer's pre-activation of row r is lon_parts[row] @ row_weights[r] + b0, one small GEMM per
// row; chunks hold whole rows (about tile_points points; a longer row is a chunk of its own).
Tensor iso_latitude_encoder_forward(const Tensor& lon_parts, const Tensor& row_weights,
                                    const std::vector<int64_t>& row_counts, const TensorList& weights,
                                    const TensorList& biases, double w0_first, double w0_hidden, int64_t tile_points) {
  const int64_t width =
      check_iso_latitude_encoder(lon_parts, row_weights, row_counts, weights, biases, tile_points, DeviceType::CPU);
  const int64_t n = lon_parts.size(0);
  Tensor out = empty_like_shape({n, width}, lon_parts);
  if (n == 0) return out;
  std::vector<int64_t> row_start;
  const std::vector<int64_t> bounds = driver::whole_row_chunks(row_counts, tile_points, row_start);
  const Tensor b0 = biases[0];
  size_t r = 0;  // the first row of the chunk being written (chunks come in order)
  auto first = [&](int64_t lo, int64_t m, Tensor& y) {
    for (; r < row_counts.size() && row_start[r] < lo + m; ++r) {
      if (row_counts[r] == 0) continue;
      Tensor dst = rows(y, row_start[r] - lo, row_counts[r]);
      const Tensor part = rows(lon_parts, row_start[r], row_counts[r]);
      const Tensor wr = torch::stable::select(row_weights, 0, static_cast<int64_t>(r));
      STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_cpu_addmm_out(dst.get(), b0.get(), part.get(), wr.get(), 1.0, 1.0));
    }
  };
  dispatch_floating(lon_parts.scalar_type(), "satclip::iso_latitude_encoder_forward", [&](auto zero) {
    using scalar_t = decltype(zero);
    CpuLayers<scalar_t> be(out, lon_parts, 0, weights, biases, w0_first, w0_hidden, driver::largest_chunk(bounds),
                           addmm_into, {}, lon_parts.scalar_type(), first, row_weights.size(2));
    driver::encode_chunks(be, bounds);
  });
  return out;
}

// satclip::_cpu_bf16_gemm(mode): sets which GEMMs precision="bf16" runs on the CPU ("" keeps it)
// and reports, as JSON (satclip.ops.extension reads it into a dict), the mode, the path, why, and
// every timed decision so far.
std::string cpu_bf16_gemm(std::string_view mode) {
  if (!mode.empty()) set_cpu_bf16_gemm_mode(std::string(mode));
  const Bf16GemmChoice c = cpu_bf16_gemm_choice(isa_in_use() == kAvx512);
  TimedChoiceReport r{bf16_choices().mode(), c.measure ? "measured" : bf16_path_name(c.path), c.why,
                      bf16_choices().decisions()};
  return to_json(r);
}

}  // namespace
}  // namespace satclip

STABLE_TORCH_LIBRARY_IMPL(satclip, CompositeExplicitAutograd, m) {
  m.impl("_cpu_bf16_gemm", TORCH_BOX(&satclip::cpu_bf16_gemm));
}

STABLE_TORCH_LIBRARY_IMPL(satclip, CPU, m) {
  m.impl("location_encoder_forward", TORCH_BOX(&satclip::location_encoder_forward));
  m.impl("iso_latitude_encoder_forward", TORCH_BOX(&satclip::iso_latitude_encoder_forward));
}

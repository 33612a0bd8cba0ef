// clip_loss.cpp -- satclip::clip_loss_streaming and its backward: the symmetric CLIP loss
// (CE(image -> location) + CE(location -> image)) / 2 over this process's b rows, computed tile by
// tile over the keys with a running log-sum-exp, so the [b, G] logits and their gradient never
// exist at once.
//
// Inputs: img, loc [b, D] (normalised, one dtype: float32 or float64), scale a 0-dim tensor (the
// exponentiated temperature), all_img / all_loc [G, D] (every process's rows, this one's at
// `offset`) or undefined for one process: then keys = img / loc and one GEMM per tile serves both
// directions (rows: image -> location; columns: location -> image). Tiles of `tile` key columns
// (0: about 16M logits, 64 MB in float32). Outputs: loss (0-dim), ce1 [b] (each row's cross-entropy
// image -> location), ce2 [b] (location -> image), what the backward needs.
//
// Near-zero losses keep their relative precision: a row's cross-entropy is computed as
// log(1 + sum over the negatives of exp(logit - positive)) (softplus of a log-sum-exp of the
// negatives alone), never as log-sum-exp minus the positive logit, which cancels to the rounding
// of a logit (1 ulp of the scale, ~1e-6 in float32) when the positive dominates. The backward
// likewise gives the positive 1 - p = -expm1(-ce), not p - 1.
//
// Two schedules, the same loss to float rounding:
// * fixed shift (when 2 * scale is below ~80 in float32, ~700 in float64): the features are unit
//   vectors, so every logit lies in [-scale, scale] and exp(logit - scale) neither overflows nor
//   underflows to zero. One exp per logit then serves both directions (row sums: image ->
//   location; column sums: location -> image), and the work goes in blocks of kRows x tile
//   logits that stay in cache between the GEMM that makes them and the passes that use them
//   (the logits of a whole tile of keys are tens of MB: every pass over them went to memory).
//   The backward's temperature gradient comes from the [b, D] products it already has.
// * running max (larger scales): per-row online log-sum-exp over tiles of keys, as the twin.
// Made of ATen calls only (mm on blocks, exp, reductions), so the same code is the CPU kernel and
// the CUDA path (cuBLAS GEMMs per block) until a GPU run can tune a fused kernel. The twin,
// satclip/ops/reference.py (clip_loss_streaming), computes the running-max schedule.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <tuple>

namespace satclip {
namespace {

const char* kOp = "satclip::clip_loss_streaming";

int64_t tile_width(int64_t b, int64_t tile) {
  return tile > 0 ? tile : std::max<int64_t>(256, (int64_t{1} << 24) / std::max<int64_t>(b, 1));
}

constexpr int64_t kRows = 512;       // rows per block of the fixed-shift schedule
constexpr int64_t kBlockCols = 1024;  // key columns per block there (when tile is 0)

bool fixed_shift(const at::Tensor& scale) {
  const double s = scale.item<double>();
  return std::isfinite(s) && s > 0 && 2 * s < (scale.scalar_type() == at::kFloat ? 80.0 : 700.0);
}

// exp(q k^T - c) for one block (q already multiplied by the scale c).
at::Tensor shifted_exp(const at::Tensor& q, const at::Tensor& k, double c) {
  at::Tensor e = at::mm(q, k.t());
  return e.sub_(c).exp_();
}

// The positives of a block of rows [i, ..) x keys [j, ..): query row r is paired with key
// offset + i + r, so they lie on the block's diagonal i + offset - j (empty when outside it).
at::Tensor positives(const at::Tensor& block, int64_t i, int64_t j, int64_t offset) {
  return block.diagonal(i + offset - j);
}

// Fixed-shift forward: row (and, for one process, column) sums of exp(logit - c) over the
// negatives (the positives left out).
std::tuple<at::Tensor, at::Tensor> blocked_sums(const at::Tensor& q, const at::Tensor& keys, double c, int64_t t,
                                                bool columns, int64_t offset) {
  const int64_t b = q.size(0), g = keys.size(0);
  at::Tensor rows = at::zeros({b}, q.options()), cols = columns ? at::zeros({g}, q.options()) : at::Tensor();
  for (int64_t i = 0; i < b; i += kRows) {
    const int64_t ie = std::min(b, i + kRows);
    const at::Tensor qi = q.slice(0, i, ie);
    for (int64_t j = 0; j < g; j += t) {
      const int64_t je = std::min(g, j + t);
      at::Tensor e = shifted_exp(qi, keys.slice(0, j, je), c);
      positives(e, i, j, offset).zero_();
      rows.slice(0, i, ie).add_(e.sum(1));
      if (columns) cols.slice(0, j, je).add_(e.sum(0));
    }
  }
  return {rows, cols};
}

void check_inputs(const at::Tensor& img, const at::Tensor& loc, const std::optional<at::Tensor>& all_img,
                  const std::optional<at::Tensor>& all_loc, const at::Tensor& scale, int64_t offset) {
  TORCH_CHECK(img.dim() == 2 && loc.sizes() == img.sizes(), kOp,
              ": expected img and loc of one shape [b, D], got ", img.sizes(), " and ", loc.sizes());
  TORCH_CHECK(img.scalar_type() == at::kFloat || img.scalar_type() == at::kDouble, kOp,
              ": expected float32 or float64 features, got ", img.scalar_type());
  TORCH_CHECK(loc.scalar_type() == img.scalar_type() && scale.scalar_type() == img.scalar_type(), kOp,
              ": img, loc and scale must share one dtype");
  TORCH_CHECK(scale.dim() == 0, kOp, ": expected a 0-dim scale, got ", scale.sizes());
  TORCH_CHECK(all_img.has_value() == all_loc.has_value(), kOp, ": give both all_img and all_loc, or neither");
  if (all_img.has_value()) {
    TORCH_CHECK(all_img->dim() == 2 && all_img->size(1) == img.size(1) && all_loc->sizes() == all_img->sizes(), kOp,
                ": expected all_img and all_loc of one shape [G, ", img.size(1), "], got ", all_img->sizes(),
                " and ", all_loc->sizes());
    TORCH_CHECK(all_img->scalar_type() == img.scalar_type() && all_loc->scalar_type() == img.scalar_type(), kOp,
                ": all_img and all_loc must have img's dtype");
    TORCH_CHECK(offset >= 0 && offset + img.size(0) <= all_img->size(0), kOp, ": offset ", offset,
                " puts this process's ", img.size(0), " rows outside the ", all_img->size(0), " gathered rows");
  }
}

// Running log-sum-exp over key tiles: row max m and sum s of exp(x - m) (entries of -inf, the
// positives, add nothing; a row with nothing finite yet keeps m = -inf, s = 0).
void lse_update(at::Tensor& m, at::Tensor& s, const at::Tensor& a) {
  at::Tensor m_new = at::maximum(m, std::get<0>(a.max(1)));
  const at::Tensor shift = m_new.masked_fill(at::isinf(m_new), 0);
  s = s * at::exp(m - shift) + at::exp(a - shift.unsqueeze(1)).sum(1);
  m = m_new;
}

// A row's cross-entropy from the log-sum-exp of its negatives alone: log(1 + exp(lse_neg - pos)).
at::Tensor cross_entropy(const at::Tensor& lse_negatives, const at::Tensor& pos) {
  return at::logaddexp(at::zeros_like(pos), lse_negatives - pos);
}

// A logit tile with its positives at -inf (left out of the log-sum-exps).
at::Tensor without_positives(at::Tensor a, int64_t i, int64_t j, int64_t offset) {
  positives(a, i, j, offset).fill_(-std::numeric_limits<double>::infinity());
  return a;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> clip_loss_streaming(
    const at::Tensor& img, const at::Tensor& loc, const std::optional<at::Tensor>& all_img,
    const std::optional<at::Tensor>& all_loc, const at::Tensor& scale, int64_t offset, int64_t tile) {
  check_inputs(img, loc, all_img, all_loc, scale, offset);
  const int64_t b = img.size(0);
  const int64_t t = tile_width(b, tile);
  const at::Tensor pos = scale * (img * loc).sum(1);  // the positives' logits (own rows)
  at::Tensor ce1, ce2;
  if (fixed_shift(scale)) {
    const double c = scale.item<double>();
    const int64_t tb = tile > 0 ? tile : kBlockCols;
    const at::Tensor q_img = img * scale;
    at::Tensor neg1, neg2;  // sums of exp(logit - c) over the negatives
    if (!all_img.has_value()) {
      std::tie(neg1, neg2) = blocked_sums(q_img, loc, c, tb, true, 0);
    } else {
      neg1 = std::get<0>(blocked_sums(q_img, *all_loc, c, tb, false, offset));
      neg2 = std::get<0>(blocked_sums(loc * scale, *all_img, c, tb, false, offset));
    }
    ce1 = cross_entropy(neg1.log_().add_(c), pos);
    ce2 = cross_entropy(neg2.log_().add_(c), pos);
  } else {
    at::Tensor m1 = at::full({b}, -std::numeric_limits<double>::infinity(), img.options());
    at::Tensor s1 = at::zeros({b}, img.options());
    at::Tensor lse2;
    if (!all_img.has_value()) {
      lse2 = at::empty({b}, img.options());
      for (int64_t j = 0; j < b; j += t) {
        const int64_t e = std::min(b, j + t);
        const at::Tensor a = without_positives(scale * at::mm(img, loc.slice(0, j, e).t()), 0, j, 0);
        lse_update(m1, s1, a);
        lse2.slice(0, j, e).copy_(at::logsumexp(a, {0}));
      }
    } else {
      at::Tensor m2 = m1.clone(), s2 = s1.clone();
      const int64_t g = all_loc->size(0);
      for (int64_t j = 0; j < g; j += t) {
        const int64_t e = std::min(g, j + t);
        lse_update(m1, s1, without_positives(scale * at::mm(img, all_loc->slice(0, j, e).t()), 0, j, offset));
        lse_update(m2, s2, without_positives(scale * at::mm(loc, all_img->slice(0, j, e).t()), 0, j, offset));
      }
      lse2 = m2 + at::log(s2);
    }
    ce1 = cross_entropy(m1 + at::log(s1), pos);
    ce2 = cross_entropy(lse2, pos);
  }
  at::Tensor loss = (ce1.sum() + ce2.sum()) / static_cast<double>(2 * b);
  return {loss, ce1, ce2};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> clip_loss_streaming_backward(
    const at::Tensor& grad, const at::Tensor& img, const at::Tensor& loc, const std::optional<at::Tensor>& all_img,
    const std::optional<at::Tensor>& all_loc, const at::Tensor& scale, const at::Tensor& ce1,
    const at::Tensor& ce2, int64_t offset, int64_t tile) {
  check_inputs(img, loc, all_img, all_loc, scale, offset);
  const int64_t b = img.size(0);
  const int64_t t = tile_width(b, tile);
  const at::Tensor c = grad.to(img.scalar_type()) / static_cast<double>(2 * b);  // d loss / d logit, per softmax
  const at::Tensor pos = scale * (img * loc).sum(1);
  // The positives: d ce / d positive = p - 1 = -expm1(-ce) per direction, on the own rows.
  const at::Tensor w = (at::expm1(-ce1) + at::expm1(-ce2)) * c;
  at::Tensor g_img = (w * scale).unsqueeze(1) * loc;
  at::Tensor g_loc = (w * scale).unsqueeze(1) * img;
  at::Tensor g_scale = (w * (img * loc).sum(1)).sum();
  const at::Tensor lse1 = pos + ce1, lse2 = pos + ce2;  // the log-sum-exps over every key
  if (fixed_shift(scale)) {
    // d loss / d logit = c * (exp(logit - lse1_i) [+ exp(logit - lse2_j)]) = c * E * (u_i [+ v_j]),
    // E = exp(logit - s), u = exp(s - lse1), v = exp(s - lse2), on the negatives (the positives
    // above). The temperature's gradient, sum(dA * A) / s = sum_i q_i . (dA @ keys)_i, reuses the
    // product that feeds the query gradient.
    const double s = scale.item<double>();
    const int64_t tb = tile > 0 ? tile : kBlockCols;
    auto direction = [&](const at::Tensor& q, const at::Tensor& keys, const at::Tensor& lse_rows,
                         const at::Tensor* lse_cols, int64_t key_offset, at::Tensor& g_q, at::Tensor& g_keys) {
      const at::Tensor u = (s - lse_rows).exp_() * c;
      const at::Tensor v = lse_cols != nullptr ? (s - *lse_cols).exp_() * c : at::Tensor();
      const at::Tensor qs = q * scale;
      const int64_t nq = q.size(0), nk = keys.size(0);
      for (int64_t i = 0; i < nq; i += kRows) {
        const int64_t ie = std::min(nq, i + kRows);
        const at::Tensor qi = q.slice(0, i, ie);
        for (int64_t j = 0; j < nk; j += tb) {
          const int64_t je = std::min(nk, j + tb);
          const at::Tensor kj = keys.slice(0, j, je);
          at::Tensor da = shifted_exp(qs.slice(0, i, ie), kj, s);
          if (v.defined()) {
            da.mul_(u.slice(0, i, ie).unsqueeze(1) + v.slice(0, j, je).unsqueeze(0));
          } else {
            da.mul_(u.slice(0, i, ie).unsqueeze(1));
          }
          positives(da, i, j, key_offset).zero_();
          const at::Tensor dk = at::mm(da, kj);
          g_q.slice(0, i, ie).add_(dk, s);
          g_scale = g_scale + (qi * dk).sum();
          g_keys.slice(0, j, je).add_(at::mm(da.t(), qi), s);
        }
      }
    };
    if (!all_img.has_value()) {
      direction(img, loc, lse1, &lse2, 0, g_img, g_loc);  // both directions from one block of logits
      return {g_img, g_loc, at::empty({0}, img.options()), at::empty({0}, img.options()), g_scale};
    }
    at::Tensor g_all_img = at::zeros_like(*all_img), g_all_loc = at::zeros_like(*all_loc);
    direction(img, *all_loc, lse1, nullptr, offset, g_img, g_all_loc);
    direction(loc, *all_img, lse2, nullptr, offset, g_loc, g_all_img);
    return {g_img, g_loc, g_all_img, g_all_loc, g_scale};
  }
  if (!all_img.has_value()) {
    for (int64_t j = 0; j < b; j += t) {
      const int64_t e = std::min(b, j + t);
      const at::Tensor lj = loc.slice(0, j, e);
      const at::Tensor a = scale * at::mm(img, lj.t());
      at::Tensor da = c * (at::exp(a - lse1.unsqueeze(1)) + at::exp(a - lse2.slice(0, j, e).unsqueeze(0)));
      positives(da, 0, j, 0).zero_();
      g_img.add_(scale * at::mm(da, lj));
      g_loc.slice(0, j, e).add_(scale * at::mm(da.t(), img));
      g_scale = g_scale + (da * a).sum() / scale;
    }
    return {g_img, g_loc, at::empty({0}, img.options()), at::empty({0}, img.options()), g_scale};
  }
  at::Tensor g_all_img = at::zeros_like(*all_img), g_all_loc = at::zeros_like(*all_loc);
  const int64_t g = all_loc->size(0);
  for (int64_t j = 0; j < g; j += t) {
    const int64_t e = std::min(g, j + t);
    const at::Tensor kl = all_loc->slice(0, j, e), ki = all_img->slice(0, j, e);
    const at::Tensor a1 = scale * at::mm(img, kl.t());  // image -> location
    at::Tensor da1 = c * at::exp(a1 - lse1.unsqueeze(1));
    positives(da1, 0, j, offset).zero_();
    const at::Tensor a2 = scale * at::mm(loc, ki.t());  // location -> image
    at::Tensor da2 = c * at::exp(a2 - lse2.unsqueeze(1));
    positives(da2, 0, j, offset).zero_();
    g_img.add_(scale * at::mm(da1, kl));
    g_loc.add_(scale * at::mm(da2, ki));
    g_all_loc.slice(0, j, e).copy_(scale * at::mm(da1.t(), img));
    g_all_img.slice(0, j, e).copy_(scale * at::mm(da2.t(), loc));
    g_scale = g_scale + ((da1 * a1).sum() + (da2 * a2).sum()) / scale;
  }
  return {g_img, g_loc, g_all_img, g_all_loc, g_scale};
}

}  // namespace
}  // namespace satclip

// The same ATen code for both devices: on CUDA every at::mm is a cuBLAS GEMM.
TORCH_LIBRARY_IMPL(satclip, CPU, m) {
  m.impl("clip_loss_streaming", &satclip::clip_loss_streaming);
  m.impl("clip_loss_streaming_backward", &satclip::clip_loss_streaming_backward);
}

TORCH_LIBRARY_IMPL(satclip, CUDA, m) {
  m.impl("clip_loss_streaming", &satclip::clip_loss_streaming);
  m.impl("clip_loss_streaming_backward", &satclip::clip_loss_streaming_backward);
}

// encoder_driver.h -- the location encoder's forward pass, written once: chunks of points, each
// through every layer, over a backend that knows one device and one way of computing. Torch-free
// (the backends own their buffers: torch tensors in the glue, raw arrays in a CPU kernel), so the
// same loop runs the CPU's exact, rounded-operand, MKL and AVX512-BF16 paths, the factorised
// (iso-latitude) first layer and the CUDA float32 / tf32 / bf16 / float16 modes.
//
// The encoder: layers 0 .. n-1; layer 0 reads the SH features (degree < L, L*L of them), every
// layer but the last is a sine layer sin(w0_i (x W_i^T + b_i)), the last is linear. A backend B:
//
//   using Act = ...;                  a block of activations (rows = the chunk's points)
//   int  layers() const;              n >= 1
//   bool fuses_first_layer() const;   whether layer 0 runs from the coordinates (a fused kernel,
//                                     or the factorised first layer); only asked when n >= 2
//   Act  first_layer(lo, m);          layer 0 with its sine for points [lo, lo + m), as the next
//                                     layer's operand
//   Act  features(lo, m);             the SH features of points [lo, lo + m), as layer 0's operand
//   Act  sine_layer(i, x);            sin(w0_i (x W_i^T + b_i)), as the next layer's operand
//   void linear_out(i, x, lo, m);     x W_i^T + b_i into the output rows [lo, lo + m)
//
// "As an operand" carries the precision: an exact backend hands the values on, a reduced-precision
// one rounds them to its operand format (bf16, tf32, half) where it stores them or in a pass of
// its own; the driver does not know which. Chunk bounds come from uniform_chunks (a fixed tile) or
// whole_row_chunks (the factorised path's chunks of whole latitude rows).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace satclip {
namespace driver {

// One chunk of points, [lo, lo + m), through every layer.
template <class B>
void encode_chunk(B& be, int64_t lo, int64_t m) {
  const int layers = be.layers();
  int i = 0;
  typename B::Act x;
  if (layers >= 2 && be.fuses_first_layer()) {
    x = be.first_layer(lo, m);
    i = 1;
  } else {
    x = be.features(lo, m);
  }
  for (; i + 1 < layers; ++i) x = be.sine_layer(i, x);
  be.linear_out(layers - 1, x, lo, m);
}

// Every chunk; bounds: the chunk starts, then the point count (empty or {0}: nothing to do).
template <class B>
void encode_chunks(B& be, const std::vector<int64_t>& bounds) {
  for (size_t k = 0; k + 1 < bounds.size(); ++k) encode_chunk(be, bounds[k], bounds[k + 1] - bounds[k]);
}

// Chunks of `tile` points (the last shorter): {0, tile, 2 tile, ..., n}; {0} for n = 0.
inline std::vector<int64_t> uniform_chunks(int64_t n, int64_t tile) {
  std::vector<int64_t> bounds;
  for (int64_t lo = 0; lo < n; lo += tile) bounds.push_back(lo);
  bounds.push_back(n);
  return bounds;
}

// Chunks of whole rows (row r holds counts[r] consecutive points) of about `tile` points: a chunk
// closes before the row that would take it past `tile` (a longer row is a chunk of its own).
// row_start gets each row's first point, and the total at the end.
inline std::vector<int64_t> whole_row_chunks(const std::vector<int64_t>& counts, int64_t tile,
                                             std::vector<int64_t>& row_start) {
  row_start.assign(counts.size() + 1, 0);
  std::vector<int64_t> bounds{0};
  for (size_t r = 0; r < counts.size(); ++r) {
    row_start[r + 1] = row_start[r] + counts[r];
    if (row_start[r + 1] - bounds.back() > tile && row_start[r] > bounds.back()) bounds.push_back(row_start[r]);
  }
  bounds.push_back(row_start.back());
  return bounds;
}

// The largest chunk of `bounds` (0 when empty): what a backend sizes its workspace for.
inline int64_t largest_chunk(const std::vector<int64_t>& bounds) {
  int64_t c = 0;
  for (size_t k = 0; k + 1 < bounds.size(); ++k) c = std::max(c, bounds[k + 1] - bounds[k]);
  return c;
}

}  // namespace driver
}  // namespace satclip

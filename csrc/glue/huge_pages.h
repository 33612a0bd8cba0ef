// huge_pages.h -- the CPU glue's policy for large fresh outputs (the [N, L*L] SH features).
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "stable_tensor.h"

namespace satclip {

// Large outputs cost more to page in than to compute: first touch of fresh 4 KiB pages runs at
// ~0.25 ns/byte here, three times the kernel's own time at L = 40. Asking for transparent huge
// pages on the untouched, 2 MiB-aligned interior of the new buffer (advisory; ignored where THP
// is off) cuts that to ~0.06 ns/byte (measured: 640 MB in 38 ms instead of 180 ms). Below 256 MB
// the kernel's compaction stalls (defrag=madvise) cost more than they save (80 MB: 25-115 ms
// instead of 27 ms), so small buffers are left alone.
inline void advise_huge_pages(const Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (bytes < (size_t(256) << 20)) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (p + kHuge - 1) & ~(kHuge - 1), hi = (p + bytes) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

}  // namespace satclip

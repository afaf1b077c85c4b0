// Large freshly allocated CPU outputs: ask Linux for transparent huge pages before first touch.
//
// A new 64 MB tensor costs ~16k page faults, each zeroing a 4 KB page: measured here, allocating
// and filling (1, 64, 512, 512) float32 took 29 ms with 4 KB pages and 8 ms with huge pages, more
// than the Gram backward's own arithmetic at that shape. torch does the same for all of its CPU
// allocations when THP_MEM_ALLOC_ENABLE=1; this does it for genfast's large outputs only.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace genfast::cpu {

inline void advise_huge_pages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  if (bytes < 4 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  // Only whole huge pages inside the allocation; a refusal (THP off) just leaves 4 KB pages.
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace genfast::cpu

// Keeping a forward's freed temporaries in the process (heap.hpp).
#include "profagent/torch/heap.hpp"

#include <atomic>
#include <cstddef>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace profagent::torch_tk {

namespace {

// glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems (the most its dynamic threshold rises to), and
// twice that for trimming, as glibc's dynamic rule sets it.
constexpr std::size_t kMmapThreshold = std::size_t{32} << 20;
constexpr std::size_t kTrimThreshold = 2 * kMmapThreshold;

std::atomic<bool> g_heap_set{false};

}  // namespace

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  if (g_heap_set.exchange(true)) return;
  ::mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold));
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimThreshold));
#endif
}

Json heap_settings() {
#if defined(__GLIBC__)
  const bool set = g_heap_set.load();
  return Json{{"allocator", "glibc"},
              {"mmap_threshold_bytes", set ? Json(kMmapThreshold) : Json(nullptr)},
              {"trim_threshold_bytes", set ? Json(kTrimThreshold) : Json(nullptr)}};
#else
  return Json{{"allocator", "other"}, {"mmap_threshold_bytes", nullptr}, {"trim_threshold_bytes", nullptr}};
#endif
}

}  // namespace profagent::torch_tk

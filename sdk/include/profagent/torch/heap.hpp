#pragma once
// How the process's heap treats the big temporaries of a forward. glibc's malloc serves a block above
// its mmap threshold with a fresh mmap and gives it back on free, and trims the top of the heap when
// more than its trim threshold is free there: either way the next forward touches new pages, and every
// page is a fault (~0.25 us each, a zeroed 4 KiB page). Both thresholds start low (128 KiB) and glibc
// raises them only when the process frees an mmapped block (up to 32 MiB / 64 MiB), so how fast a
// model runs depended on what the process happened to free before: the profiler measured a pruned
// resnet18 (odd channel counts, whose oneDNN reorders allocate per call) at 62-119 ms with ~93k page
// faults where the evaluation stage, after other allocations, measured 26-36 ms; Python, whose start
// raises the thresholds, ran the fixture ViT 1.4-2x faster than our evaluator (page faults 8x fewer).
// keep_freed_memory_for_reuse() sets both thresholds up front to the ceiling glibc's own rule reaches,
// so every stage measures the state a long-running process settles in, whatever ran before it.
#include "profagent/json.hpp"

namespace profagent::torch_tk {

// Process-wide and one-way (glibc cannot report or restore its dynamic mode); idempotent and cheap
// after the first call. A no-op where the C library is not glibc.
void keep_freed_memory_for_reuse();

// {"allocator": "glibc"|"other", "mmap_threshold_bytes", "trim_threshold_bytes"} (thresholds null when
// not set by keep_freed_memory_for_reuse(): glibc's dynamic defaults), for a run's `environment`.
Json heap_settings();

}  // namespace profagent::torch_tk

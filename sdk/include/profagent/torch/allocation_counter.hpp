#pragma once
// Counts the bytes c10's allocator hands out and takes back, the hook torch.profiler(profile_memory=
// True) uses: install it with c10::DebugInfoGuard(c10::DebugInfoKind::PROFILER_STATE, counter) and
// every allocation and free on this thread (and inter-op tasks, which inherit it) on `device` is
// reported. It keeps the running sum and the high-water marks of the whole region and of the
// current op (start_op() resets the latter). Tensors that libraries allocate on their own (oneDNN and
// OpenBLAS scratch) and tensors allocated inside OpenMP worker threads are not seen.
#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <atomic>
#include <cstdint>

namespace profagent::torch_tk {

namespace detail {
// The type LibTorch gives reportMemoryUsage's totals: int64_t in 1.13, size_t in 2.x. Deduced from
// the base class so that one override compiles against both.
template <class>
struct ReportTotals;
template <class C, class R, class Ptr, class Size, class Total, class Reserved, class Dev>
struct ReportTotals<R (C::*)(Ptr, Size, Total, Reserved, Dev)> {
  using type = Total;
};
using ReportTotal = ReportTotals<decltype(&c10::MemoryReportingInfoBase::reportMemoryUsage)>::type;
}  // namespace detail

class AllocationCounter final : public c10::MemoryReportingInfoBase {
 public:
  explicit AllocationCounter(c10::DeviceType device = c10::DeviceType::CPU) : device_(device) {}
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, detail::ReportTotal /*total_allocated*/,
                         detail::ReportTotal /*total_reserved*/, c10::Device device) override {
    if (device.type() != device_) return;
    const std::int64_t now = current_.fetch_add(alloc_size) + alloc_size;
    raise(peak_, now);
    raise(op_peak_, now);
  }
  bool memoryProfilingEnabled() const override { return true; }

  std::int64_t current() const { return current_.load(); }
  std::int64_t peak() const { return peak_.load(); }
  std::int64_t op_peak() const { return op_peak_.load(); }
  void start_op() { op_peak_.store(current_.load()); }

 private:
  static void raise(std::atomic<std::int64_t>& mark, std::int64_t value) {
    std::int64_t seen = mark.load();
    while (value > seen && !mark.compare_exchange_weak(seen, value)) {
    }
  }
  c10::DeviceType device_;
  std::atomic<std::int64_t> current_{0};
  std::atomic<std::int64_t> peak_{0};
  std::atomic<std::int64_t> op_peak_{0};
};

}  // namespace profagent::torch_tk

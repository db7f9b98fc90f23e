#pragma once
// Sets LibTorch's intra-op thread count for a scope (a measurement, a calibration) and puts back the
// one it found, so that timing one model never changes how the caller's code runs afterwards.
#include <ATen/Parallel.h>

namespace profagent::torch_tk {

class ThreadsGuard {
 public:
  // threads <= 0: leave the count as it is.
  explicit ThreadsGuard(int threads) : previous_(at::get_num_threads()) {
    if (threads > 0 && threads != previous_) {
      at::set_num_threads(threads);
      changed_ = true;
    }
  }
  ~ThreadsGuard() {
    if (changed_) at::set_num_threads(previous_);
  }
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;

 private:
  int previous_;
  bool changed_ = false;
};

}  // namespace profagent::torch_tk

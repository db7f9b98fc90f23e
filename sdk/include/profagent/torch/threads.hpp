#pragma once
// The thread pools a forward can use on the CPU, set together for a scope: ATen's intra-op pool
// (OpenMP in Debian's LibTorch, which oneDNN also runs on) and OpenBLAS's own pool (Debian's default
// libblas.so.3 is openblas-pthread, whose threads at::set_num_threads does not reach: with `threads: 1`
// a GEMM could still fan out over every core unless OMP_NUM_THREADS=1 was exported). The guard puts
// back what it found, so that timing one model never changes how the caller's code runs afterwards.
#include "profagent/json.hpp"

namespace profagent::torch_tk {

class ThreadsGuard {
 public:
  // threads <= 0: leave every pool as it is.
  explicit ThreadsGuard(int threads);
  ~ThreadsGuard();
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;

 private:
  int previous_aten_ = 0;
  int previous_blas_ = -1;  // -1: no OpenBLAS in the process
  bool changed_ = false;
};

// The effective size of each pool now: {aten_intra_op, aten_inter_op, openmp_onednn (OpenMP's team
// size on this thread, which oneDNN's convolutions use; null without OpenMP), openblas (null without OpenBLAS),
// OMP_NUM_THREADS and OPENBLAS_NUM_THREADS as set in the environment (null when unset)}.
Json thread_pools();

// OpenBLAS's thread count, or -1 when the process has no OpenBLAS.
int openblas_threads();

}  // namespace profagent::torch_tk

// Setting every CPU thread pool of a forward at once (see threads.hpp). OpenBLAS is reached through
// the symbols of whatever libblas the process loaded (dlsym), so nothing links OpenBLAS directly and a
// process with another BLAS simply has no OpenBLAS pool to set.
#include "profagent/torch/threads.hpp"

#include <dlfcn.h>

#include <cstdlib>

#include <ATen/Parallel.h>

namespace profagent::torch_tk {

namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

SetThreads openblas_setter() {
  static auto setter = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return setter;
}

GetThreads openblas_getter() {
  static auto getter = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return getter;
}

void set_openblas_threads(int threads) {
  if (auto setter = openblas_setter(); setter && threads > 0) setter(threads);
}

// OpenMP's team size for a parallel region started on this thread: what oneDNN (built on OpenMP in
// Debian's LibTorch) and ATen's parallel_for use. at::set_num_threads sets it (omp_set_num_threads) for
// the calling thread, where the forward runs. -1 without an OpenMP runtime in the process.
int openmp_threads() {
  static auto getter = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  return getter ? getter() : -1;
}

Json environment_value(const char* name) {
  const char* value = std::getenv(name);
  return value ? Json(value) : Json(nullptr);
}

}  // namespace

int openblas_threads() {
  auto getter = openblas_getter();
  return getter ? getter() : -1;
}

ThreadsGuard::ThreadsGuard(int threads) : previous_aten_(at::get_num_threads()), previous_blas_(openblas_threads()) {
  if (threads <= 0) return;
  changed_ = true;
  if (threads != previous_aten_) at::set_num_threads(threads);
  if (previous_blas_ >= 0 && threads != previous_blas_) set_openblas_threads(threads);
}

ThreadsGuard::~ThreadsGuard() {
  if (!changed_) return;
  if (at::get_num_threads() != previous_aten_) at::set_num_threads(previous_aten_);
  if (previous_blas_ >= 0 && openblas_threads() != previous_blas_) set_openblas_threads(previous_blas_);
}

Json thread_pools() {
  int blas = openblas_threads();
  const int openmp = openmp_threads();
  return Json{{"aten_intra_op", at::get_num_threads()},
              {"aten_inter_op", at::get_num_interop_threads()},
              {"openmp_onednn", openmp > 0 ? Json(openmp) : Json(nullptr)},
              {"openblas", blas >= 0 ? Json(blas) : Json(nullptr)},
              {"OMP_NUM_THREADS", environment_value("OMP_NUM_THREADS")},
              {"OPENBLAS_NUM_THREADS", environment_value("OPENBLAS_NUM_THREADS")}};
}

}  // namespace profagent::torch_tk

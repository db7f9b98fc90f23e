// `threads: N` must mean N threads in every pool a forward uses: ATen's intra-op pool and OpenBLAS's
// own (Debian's libblas.so.3 is openblas-pthread, which at::set_num_threads does not reach), set
// together and put back afterwards; the environment a measurement records names each pool's size.
#include "torch_doctest.hpp"

#include <ATen/Parallel.h>

#include "profagent/torch/model_io.hpp"
#include "profagent/torch/threads.hpp"

using profagent::torch_tk::openblas_threads;
using profagent::torch_tk::thread_pools;
using profagent::torch_tk::ThreadsGuard;

TEST_CASE("a threads guard sets ATen's and OpenBLAS's pools together and restores both") {
  // This machine's LibTorch computes GEMMs with OpenBLAS (../shared/DESIGN.md): its pool must be found.
  REQUIRE(openblas_threads() >= 1);
  ThreadsGuard outer(2);  // a known starting point, whatever the machine's default
  REQUIRE(at::get_num_threads() == 2);
  REQUIRE(openblas_threads() == 2);
  {
    ThreadsGuard one(1);
    CHECK(at::get_num_threads() == 1);
    CHECK(openblas_threads() == 1);
    auto pools = thread_pools();
    CHECK(pools["aten_intra_op"] == 1);
    CHECK(pools["openblas"] == 1);
    // A GEMM under the guard runs and leaves the pools as set.
    auto product = torch::matmul(torch::ones({64, 64}), torch::ones({64, 64}));
    CHECK(product[0][0].item<float>() == 64.0f);
    CHECK(openblas_threads() == 1);
  }
  CHECK(at::get_num_threads() == 2);
  CHECK(openblas_threads() == 2);
  {
    ThreadsGuard unchanged(0);  // 0: leave every pool as it is
    CHECK(at::get_num_threads() == 2);
    CHECK(openblas_threads() == 2);
  }
}

TEST_CASE("the recorded environment names every pool's effective size") {
  ThreadsGuard one(1);
  auto environment = profagent::torch_tk::environment_info(torch::Device(torch::kCPU));
  REQUIRE(environment.contains("thread_pools"));
  CHECK(environment["thread_pools"]["aten_intra_op"] == 1);
  CHECK(environment["thread_pools"]["openblas"] == 1);
  CHECK(environment["thread_pools"].contains("OMP_NUM_THREADS"));
}

// The roofline: measured once per key and cached in a JSON file, reused on the next call, refused
// when the cache file is not JSON, and the placement of a layer (intensity, bound, attained fraction).
#include "torch_doctest.hpp"

#include <ATen/Parallel.h>

#include <fstream>
#include <thread>
#include <string>

#include "profagent/fs.hpp"
#include "profagent/profile/roofline.hpp"
#include "test_support.hpp"

using profagent::Json;
using profagent::test::contains;
using profagent::test::TempDir;
using profagent::torch_tk::Roofline;
using profagent::torch_tk::RooflineOptions;

TEST_CASE("the roofline is measured once, written to the cache file, and read back on the next call") {
  TempDir dir("roofline");
  RooflineOptions options;
  options.threads = 1;
  options.cache_path = dir.path() / "nested" / "roofline.json";
  auto first = profagent::torch_tk::load_or_measure_roofline(options);
  REQUIRE_MESSAGE(first.is_ok(), first.status().to_string());
  CHECK_FALSE(first->from_cache);
  CHECK(first->peak_gflops > 0.5);   // even reference BLAS does better on one core
  CHECK(first->bandwidth_gbs > 0.1);
  CHECK(first->ridge() == doctest::Approx(first->peak_gflops / first->bandwidth_gbs));
  CHECK(contains(first->key, "threads=1"));

  auto cache = profagent::read_json(options.cache_path);
  REQUIRE(cache.is_ok());
  REQUIRE(cache->contains(first->key));
  CHECK((*cache)[first->key]["peak_gflops"].get<double>() == doctest::Approx(first->peak_gflops));

  auto second = profagent::torch_tk::load_or_measure_roofline(options);
  REQUIRE(second.is_ok());
  CHECK(second->from_cache);
  CHECK(second->peak_gflops == doctest::Approx(first->peak_gflops));
  CHECK(second->bandwidth_gbs == doctest::Approx(first->bandwidth_gbs));

  // Another thread count is another machine as far as the roofline goes: a second entry.
  if (at::get_num_threads() > 1 || std::thread::hardware_concurrency() > 1) {
    options.threads = 2;
    auto two = profagent::torch_tk::load_or_measure_roofline(options);
    REQUIRE(two.is_ok());
    CHECK_FALSE(two->from_cache);
    CHECK(profagent::read_json(options.cache_path)->size() == 2);
  }
}

TEST_CASE("a roofline cache file that is not JSON is an error naming the file, and is left alone") {
  TempDir dir("roofline_bad");
  const auto path = dir.path() / "roofline.json";
  std::ofstream(path) << "not json {";
  RooflineOptions options;
  options.cache_path = path;
  auto result = profagent::torch_tk::load_or_measure_roofline(options);
  REQUIRE_FALSE(result.is_ok());
  CHECK(contains(result.status().message(), path.string()));
  CHECK(profagent::read_file(path).value() == "not json {");
}

TEST_CASE("a layer below the ridge point is memory-bound, above it compute-bound, with the fraction attained") {
  Roofline roofline;
  roofline.peak_gflops = 100;   // ridge at 10 FLOP/byte
  roofline.bandwidth_gbs = 10;
  // 1 GFLOP over 1 GB: intensity 1, attainable 10 GFLOP/s; done in 0.2 s = 5 GFLOP/s = half.
  auto memory = profagent::torch_tk::place_on_roofline(roofline, 1e9, 1e9, 0.2);
  CHECK(memory.intensity == doctest::Approx(1.0));
  CHECK(memory.bound == "memory");
  CHECK(memory.attainable_gflops == doctest::Approx(10.0));
  CHECK(memory.attained_fraction == doctest::Approx(0.5));
  // 100 GFLOP over 1 GB: intensity 100, attainable = the peak.
  auto compute = profagent::torch_tk::place_on_roofline(roofline, 100e9, 1e9, 2.0);
  CHECK(compute.bound == "compute");
  CHECK(compute.attainable_gflops == doctest::Approx(100.0));
  CHECK(compute.attained_fraction == doctest::Approx(0.5));
  // No FLOPs (a reshape, a pooling layer counted as other ops): no place on the roofline.
  CHECK(profagent::torch_tk::place_on_roofline(roofline, 0, 1e6, 0.1).bound == "none");
}

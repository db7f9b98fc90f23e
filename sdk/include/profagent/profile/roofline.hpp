#pragma once
// The roofline of this machine: peak fp32 GEMM throughput and memory bandwidth, measured once per
// (host, CPU model, threads, LibTorch version, device) and cached in a JSON file, and the place of a
// layer on it: arithmetic intensity = FLOPs / bytes moved, compute-bound when the intensity is at or
// above the ridge point (peak / bandwidth), memory-bound below it, and the fraction of the attainable
// throughput min(peak, intensity × bandwidth) the layer reached in its measured time.
//
// How: peak = the best of a few square fp32 matmuls (2·n³ FLOPs each, n = 1024 on CPU, 4096 on CUDA);
// bandwidth = the best of a few copies of a 128 MiB fp32 tensor into another (2 × 128 MiB moved each:
// read + write). Both under the thread count the profile uses, because both scale with it.
#include <filesystem>
#include <string>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {

struct Roofline {
  double peak_gflops = 0;    // fp32 GEMM, GFLOP/s
  double bandwidth_gbs = 0;  // GB/s (1e9 bytes)
  std::string key;           // what it was measured for (see roofline_key)
  std::string method;
  std::string measured_at;  // UTC, ISO 8601
  double seconds = 0;       // time the measurement took
  bool from_cache = false;

  double ridge() const { return bandwidth_gbs > 0 ? peak_gflops / bandwidth_gbs : 0; }  // FLOP/byte
  Json to_json() const;
  static Result<Roofline> from_json(const Json& json);
};

struct RooflineOptions {
  int threads = 0;                     // 0: the current intra-op thread count
  std::string device = "cpu";          // "cpu" or "cuda[:i]"
  std::filesystem::path cache_path;    // empty: default_roofline_cache_path()
  bool use_cache = true;               // false: measure, and update the cache
};

// $XDG_CACHE_HOME/profagent/roofline.json, else $HOME/.cache/profagent/roofline.json.
std::filesystem::path default_roofline_cache_path();

// "host=<hostname>;cpu=<model name>;threads=<n>;libtorch=<version>;device=<device>".
std::string roofline_key(int threads, const std::string& device);

// Measures now. kInvalidArgument for an unknown device; kRuntime when a measurement fails.
Result<Roofline> measure_roofline(int threads, const std::string& device);

// The cached roofline for this key, else measures it and adds it to the cache file (written atomically;
// a cache that cannot be written is only a warning). A cache file that is not valid JSON is an error
// naming the file: it is the user's file, so it is not overwritten silently.
Result<Roofline> load_or_measure_roofline(const RooflineOptions& options = {});

struct RooflinePoint {
  double intensity = 0;           // FLOP / byte
  std::string bound;              // "compute" or "memory"; "none" without FLOPs
  double attainable_gflops = 0;   // min(peak, intensity × bandwidth)
  double achieved_gflops = 0;     // flops / seconds
  double attained_fraction = 0;   // achieved / attainable
};

RooflinePoint place_on_roofline(const Roofline& roofline, double flops, double bytes, double seconds);

}  // namespace profagent::torch_tk

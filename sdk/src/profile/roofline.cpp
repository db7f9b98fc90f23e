// The roofline: peak GEMM throughput and copy bandwidth measured once per machine and cached, and
// where a layer sits under them (roofline.hpp).
#include "profagent/profile/roofline.hpp"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <limits>

#include "profagent/fs.hpp"
#include "profagent/log.hpp"
#include "profagent/torch/threads.hpp"

namespace profagent::torch_tk {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  const auto end = text.find_last_not_of(" \t\r\n");
  return begin == std::string::npos ? std::string() : text.substr(begin, end - begin + 1);
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return trim(line.substr(line.find(':') + 1));
  return "unknown";
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

// The fastest of `repeats` runs of `work` (after one untimed run), in seconds: the best run is the
// one least disturbed by other processes, which is what a peak is.
template <class Work>
double best_seconds(int repeats, bool cuda, Work&& work) {
  work();
  if (cuda) torch::cuda::synchronize();
  double best = std::numeric_limits<double>::max();
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    work();
    if (cuda) torch::cuda::synchronize();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

}  // namespace

Json Roofline::to_json() const {
  return Json{{"peak_gflops", peak_gflops}, {"bandwidth_gbs", bandwidth_gbs}, {"ridge_flops_per_byte", ridge()},
              {"key", key},                 {"method", method},               {"measured_at", measured_at},
              {"seconds", seconds},         {"from_cache", from_cache}};
}

Result<Roofline> Roofline::from_json(const Json& json) {
  if (!json.is_object() || !json.contains("peak_gflops") || !json["peak_gflops"].is_number() ||
      !json.contains("bandwidth_gbs") || !json["bandwidth_gbs"].is_number())
    return Status(ErrorCode::kValidation, "a roofline entry needs numbers peak_gflops and bandwidth_gbs");
  Roofline roofline;
  roofline.peak_gflops = json["peak_gflops"].get<double>();
  roofline.bandwidth_gbs = json["bandwidth_gbs"].get<double>();
  roofline.key = json.value("key", std::string());
  roofline.method = json.value("method", std::string());
  roofline.measured_at = json.value("measured_at", std::string());
  roofline.seconds = json.value("seconds", 0.0);
  if (roofline.peak_gflops <= 0 || roofline.bandwidth_gbs <= 0)
    return Status(ErrorCode::kValidation, "a roofline entry has a peak or bandwidth that is not positive");
  return roofline;
}

fs::path default_roofline_cache_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && *xdg != '\0') return fs::path(xdg) / "profagent" / "roofline.json";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr && *home != '\0' ? home : ".") / ".cache" / "profagent" / "roofline.json";
}

std::string roofline_key(int threads, const std::string& device) {
  return "host=" + host_name() + ";cpu=" + cpu_model_name() + ";threads=" +
         std::to_string(threads > 0 ? threads : at::get_num_threads()) + ";libtorch=" + TORCH_VERSION +
         ";device=" + device;
}

Result<Roofline> measure_roofline(int threads, const std::string& device_name) {
  const auto started = Clock::now();
  c10::optional<c10::Device> device;
  try {
    device = c10::Device(device_name);
  } catch (const std::exception&) {
    return Status(ErrorCode::kInvalidArgument, "roofline: unknown device '" + device_name + "'");
  }
  const bool cuda = device->is_cuda();
  if (!cuda && !device->is_cpu())
    return Status(ErrorCode::kInvalidArgument, "roofline: device '" + device_name + "' is neither cpu nor cuda");
  ThreadsGuard guard(threads);
  torch::NoGradGuard no_grad;
  Roofline roofline;
  roofline.key = roofline_key(threads, device_name);
  try {
    const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(*device);
    const std::int64_t n = cuda ? 4096 : 1024;
    torch::Tensor a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
    torch::Tensor c = torch::empty({n, n}, options);
    const double gemm = best_seconds(5, cuda, [&] { torch::mm_out(c, a, b); });
    roofline.peak_gflops = 2.0 * static_cast<double>(n) * n * n / gemm / 1e9;

    const std::int64_t elements = std::int64_t{32} << 20;  // 128 MiB of fp32: far beyond any cache
    torch::Tensor src = torch::rand({elements}, options), dst = torch::empty({elements}, options);
    const double copy = best_seconds(5, cuda, [&] { dst.copy_(src); });
    roofline.bandwidth_gbs = 2.0 * static_cast<double>(elements) * sizeof(float) / copy / 1e9;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, std::string("roofline: measuring on ") + device_name + " failed: " + e.what());
  }
  roofline.method = cuda ? "best of 5 fp32 mm 4096^3; best of 5 copies of 128 MiB (read+write)"
                         : "best of 5 fp32 mm 1024^3; best of 5 copies of 128 MiB (read+write)";
  roofline.measured_at = utc_now();
  roofline.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return roofline;
}

Result<Roofline> load_or_measure_roofline(const RooflineOptions& options) {
  const fs::path path = options.cache_path.empty() ? default_roofline_cache_path() : options.cache_path;
  const std::string key = roofline_key(options.threads, options.device);
  Json cache = Json::object();
  std::error_code ec;
  if (fs::exists(path, ec)) {
    auto read = read_json(path);
    if (!read || !read->is_object())
      return Status(ErrorCode::kValidation,
                    "roofline cache " + path.string() + " is not a JSON object (remove it to measure again)" +
                        (read ? std::string() : ": " + read.status().message()));
    cache = std::move(read).value();
    if (options.use_cache && cache.contains(key)) {
      auto cached = Roofline::from_json(cache[key]);
      if (cached) {
        cached->key = key;
        cached->from_cache = true;
        return cached;
      }
      log().warn("roofline cache {}: entry '{}' is unusable ({}); measuring again", path.string(), key,
                 cached.status().message());
    }
  }
  PROFAGENT_ASSIGN_OR_RETURN(Roofline measured, measure_roofline(options.threads, options.device));
  Json entry = measured.to_json();
  entry.erase("from_cache");
  cache[key] = entry;
  fs::create_directories(path.parent_path(), ec);
  Status written = write_json_atomic(path, cache);
  if (!written) log().warn("could not write the roofline cache: {}", written.message());
  return measured;
}

RooflinePoint place_on_roofline(const Roofline& roofline, double flops, double bytes, double seconds) {
  RooflinePoint point;
  if (flops <= 0 || bytes <= 0) {
    point.bound = flops <= 0 ? "none" : "compute";
    return point;
  }
  point.intensity = flops / bytes;
  point.bound = point.intensity >= roofline.ridge() ? "compute" : "memory";
  point.attainable_gflops = std::min(roofline.peak_gflops, point.intensity * roofline.bandwidth_gbs);
  if (seconds > 0) {
    point.achieved_gflops = flops / seconds / 1e9;
    if (point.attainable_gflops > 0) point.attained_fraction = point.achieved_gflops / point.attainable_gflops;
  }
  return point;
}

}  // namespace profagent::torch_tk

#include "evaluator.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <c10/core/Allocator.h>
#include <c10/core/QEngine.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <dlfcn.h>
#include <link.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#ifdef PROFAGENT_EVALUATION_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include "profagent/agent.hpp"
#include "profagent/log.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/static_profile.hpp"
#include "profagent/torch/threads.hpp"

namespace profagent::agents {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& text) {
  auto not_space = [](char c) { return !std::isspace(static_cast<unsigned char>(c)); };
  auto first = std::find_if(text.begin(), text.end(), not_space);
  auto last = std::find_if(text.rbegin(), text.rend(), not_space).base();
  return first < last ? std::string(first, last) : std::string();
}

std::vector<std::string> non_empty_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The reason of a torch error on one line. An operator's own error is its first line (a C++
// backtrace follows); an error raised inside the TorchScript interpreter starts with a TorchScript
// traceback and ends with the operator's "RuntimeError: ..." line, which is the reason.
std::string torch_reason(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  std::vector<std::string> lines =
      non_empty_lines(c10_error ? c10_error->what_without_backtrace() : error.what());
  if (lines.empty()) return "no reason given";
  if (lines.front().find("TorchScript") != std::string::npos) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it)
      if (it->find("Error: ") != std::string::npos) return *it;
    return lines.back();
  }
  return lines.front();
}

std::string shape_text(torch::IntArrayRef sizes) {
  std::string text = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) text += (i ? ", " : "") + std::to_string(sizes[i]);
  return text + "]";
}

std::string shapes_text(const std::vector<torch::Tensor>& tensors) {
  std::string text;
  for (std::size_t i = 0; i < tensors.size(); ++i) text += (i ? ", " : "") + shape_text(tensors[i].sizes());
  return text;
}

bool on_device(const torch::Tensor& tensor, const torch::Device& device) {
  return tensor.device().type() == device.type() &&
         (!device.has_index() || tensor.device().index() == device.index());
}

bool is_cuda(const std::vector<torch::Tensor>& inputs) {
  return std::any_of(inputs.begin(), inputs.end(), [](const torch::Tensor& t) { return t.is_cuda(); });
}

// Timed regions on CUDA must wait for the kernels they launched, or they time the launch only.
void synchronize_if_cuda(bool cuda) {
  if (cuda) torch::cuda::synchronize();
}

const std::map<std::string, torch::ScalarType>& scalar_types_by_name() {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"float32", torch::kFloat32},   {"float", torch::kFloat32}, {"fp32", torch::kFloat32},
      {"float16", torch::kFloat16},   {"half", torch::kFloat16},  {"fp16", torch::kFloat16},
      {"bfloat16", torch::kBFloat16}, {"bf16", torch::kBFloat16}, {"float64", torch::kFloat64},
      {"double", torch::kFloat64},    {"int64", torch::kInt64},   {"long", torch::kInt64},
      {"int32", torch::kInt32},       {"int", torch::kInt32},     {"int16", torch::kInt16},
      {"int8", torch::kInt8},         {"uint8", torch::kUInt8},   {"bool", torch::kBool},
  };
  return kTypes;
}

Status cancelled_status(const std::string& where) {
  return Status(ErrorCode::kCancelled, "evaluation cancelled " + where);
}

// The type LibTorch gives reportMemoryUsage's totals: int64_t in 1.13, size_t in 2.x. Deduced from
// the base class so that one override compiles against both.
template <class>
struct ReportTotals;
template <class C, class R, class Ptr, class Size, class Total, class Reserved, class Dev>
struct ReportTotals<R (C::*)(Ptr, Size, Total, Reserved, Dev)> {
  using type = Total;
};
using ReportTotal = ReportTotals<decltype(&c10::MemoryReportingInfoBase::reportMemoryUsage)>::type;

// Receives every CPU allocation and free made through c10's allocator by the threads that carry it
// (this thread, and inter-op tasks, which inherit it): the running sum's high-water mark is the peak.
class PeakMemoryTracker final : public c10::MemoryReportingInfoBase {
 public:
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, ReportTotal /*total_allocated*/,
                         ReportTotal /*total_reserved*/, c10::Device device) override {
    if (device.type() != c10::DeviceType::CPU) return;
    std::int64_t now = current_.fetch_add(alloc_size) + alloc_size;
    std::int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }
  bool memoryProfilingEnabled() const override { return true; }
  std::int64_t peak() const { return peak_.load(); }

 private:
  std::atomic<std::int64_t> current_{0};
  std::atomic<std::int64_t> peak_{0};
};

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return trim(line.substr(colon + 1));
    }
  }
  return "unknown";
}

// "BLAS_INFO=generic" in at::show_config(): what LibTorch was built against.
std::string blas_build_info() {
  const std::string config = at::show_config();
  const std::string key = "BLAS_INFO=";
  auto at = config.find(key);
  if (at == std::string::npos) return "unknown";
  auto end = config.find_first_of(", \n", at + key.size());
  return config.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
}

int collect_blas_library(struct dl_phdr_info* info, size_t /*size*/, void* data) {
  if (!info->dlpi_name || !*info->dlpi_name) return 0;
  const std::string name = fs::path(info->dlpi_name).filename().string();
  if (name.rfind("libblas.so", 0) == 0 || name.rfind("libopenblas", 0) == 0 ||
      name.rfind("libmkl_rt", 0) == 0 || name.rfind("libblis", 0) == 0) {
    static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
  }
  return 0;
}

// The engine as torch.backends.quantized.engine names it ("onednn", "qnnpack", "fbgemm", "x86",
// "none"), the name a user sets it by; c10::toString gives "ONEDNN" and "NoQEngine".
std::string quantized_engine_name(c10::QEngine engine) {
  if (engine == c10::QEngine::NoQEngine) return "none";
  std::string name = c10::toString(engine);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

std::string parallel_backend() {
  for (const std::string& line : non_empty_lines(at::get_parallel_info())) {
    const std::string key = "ATen parallel backend:";
    if (line.rfind(key, 0) == 0) return trim(line.substr(key.size()));
  }
  return "unknown";
}

}  // namespace

// ---- inputs ----

Result<torch::ScalarType> scalar_type_from_name(const std::string& name) {
  const auto& types = scalar_types_by_name();
  auto it = types.find(name);
  if (it == types.end())
    return Status(ErrorCode::kInvalidArgument,
                  "unknown dtype '" + name +
                      "' (expected float32, float16, bfloat16, float64, int64, int32, "
                      "int16, int8, uint8 or bool)");
  return it->second;
}

std::string scalar_type_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return "float32";
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat64:
      return "float64";
    case torch::kInt64:
      return "int64";
    case torch::kInt32:
      return "int32";
    case torch::kInt16:
      return "int16";
    case torch::kInt8:
      return "int8";
    case torch::kUInt8:
      return "uint8";
    case torch::kBool:
      return "bool";
    default:
      return c10::toString(type);
  }
}

Result<std::vector<InputSpec>> input_specs_from_shape_spec(const Json& spec) {
  const std::string where = "in the shape spec";
  if (!spec.is_object() || !spec.contains("inputs") || !spec["inputs"].is_array() || spec["inputs"].empty())
    return Status(ErrorCode::kInvalidArgument,
                  "the shape spec has no 'inputs' list (expected {\"inputs\": [{\"shape\": [...], \"dtype\": "
                  "\"float32\"}]}), got " +
                      spec.dump());
  std::vector<InputSpec> specs;
  for (std::size_t i = 0; i < spec["inputs"].size(); ++i) {
    const Json& entry = spec["inputs"][i];
    const std::string name = "inputs[" + std::to_string(i) + "] " + where;
    if (!entry.is_object() || !entry.contains("shape") || !entry["shape"].is_array())
      return Status(ErrorCode::kInvalidArgument, name + " has no 'shape' list: " + entry.dump());
    InputSpec input;
    for (const Json& dim : entry["shape"]) {
      if (!dim.is_number_integer() || dim.get<std::int64_t>() < 1)
        return Status(ErrorCode::kInvalidArgument,
                      name + " has a dimension that is not a positive integer: " + entry["shape"].dump());
      input.shape.push_back(dim.get<std::int64_t>());
    }
    if (entry.contains("dtype")) {
      if (!entry["dtype"].is_string())
        return Status(ErrorCode::kInvalidArgument,
                      name + " has a dtype that is not a string: " + entry.dump());
      auto type = scalar_type_from_name(entry["dtype"].get<std::string>());
      if (!type) return Status(type.status().code(), name + ": " + type.status().message());
      input.dtype = type.value();
    }
    specs.push_back(std::move(input));
  }
  return specs;
}

std::vector<torch::Tensor> make_inputs(const std::vector<InputSpec>& specs, std::int64_t batch,
                                       std::uint64_t seed, const torch::Device& device) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  std::vector<torch::Tensor> inputs;
  for (const InputSpec& spec : specs) {
    std::vector<std::int64_t> shape = spec.shape;
    if (!shape.empty()) shape[0] = batch;
    torch::Tensor tensor;
    // Drawn in float32 / int64 and then converted: not every CPU kernel samples float16 directly.
    if (c10::isFloatingType(spec.dtype))
      tensor = torch::randn(shape, generator, torch::TensorOptions().dtype(torch::kFloat32)).to(spec.dtype);
    else
      tensor =
          torch::randint(0, 2, shape, generator, torch::TensorOptions().dtype(torch::kInt64)).to(spec.dtype);
    inputs.push_back(tensor.to(device));
  }
  return inputs;
}

Result<torch::Tensor> run_forward(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs,
                                  const std::string& model_name) {
  std::vector<c10::IValue> arguments(inputs.begin(), inputs.end());
  c10::IValue output;
  try {
    output = module.forward(std::move(arguments));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "the " + model_name + "'s forward failed on input of shape " +
                                           shapes_text(inputs) + ": " + torch_reason(e));
  }
  if (output.isTensor()) return output.toTensor();
  std::vector<c10::IValue> elements;
  if (output.isTuple()) {
    elements = output.toTupleRef().elements().vec();
  } else if (output.isList()) {
    for (const c10::IValue& element : output.toListRef()) elements.push_back(element);
  }
  if (!elements.empty() && elements.front().isTensor()) return elements.front().toTensor();
  return Status(ErrorCode::kRuntime, "the " + model_name + "'s forward returned " + output.tagKind() +
                                         ", not a tensor (or a tuple or list whose first element is one)");
}

Result<torch::jit::Module> prepare_module(const torch::jit::Module& module, const torch::Device& device,
                                          const std::string& model_name, bool* changed) {
  bool training = false;
  for (const auto& child : module.modules())
    if (child.hasattr("training") && child.attr("training").toBool()) training = true;
  bool elsewhere = false;
  for (const auto& parameter : module.parameters()) elsewhere |= !on_device(parameter, device);
  for (const auto& buffer : module.buffers()) elsewhere |= !on_device(buffer, device);
  if (changed) *changed = training || elsewhere;
  if (!training && !elsewhere) return module;  // a handle to the same module: nothing to change
  try {
    torch::jit::Module copy = module.clone();
    // Not Module::eval(): it asserts on submodules without a `training` attribute (modules made in C++).
    for (auto child : copy.modules())
      if (child.hasattr("training")) child.setattr("training", false);
    if (elsewhere) copy.to(device);
    return copy;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "cannot prepare the " + model_name + " for evaluation on " +
                                           device.str() + ": " + torch_reason(e));
  }
}

// ---- latency ----

double percentile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double position = std::clamp(q, 0.0, 1.0) * static_cast<double>(samples.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, samples.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return samples[below] + (samples[above] - samples[below]) * fraction;
}

Json LatencyStats::to_json() const {
  return Json{{"p50", p50},
              {"p90", p90},
              {"mean", mean},
              {"min", min},
              {"warmup", warmup},
              {"repeats", repeats},
              {"batch_size", batch_size}};
}

Result<LatencyStats> measure_latency(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs,
                                     int warmup, int repeats, const CancelCheck& cancelled) {
  if (repeats < 1)
    return Status(ErrorCode::kInvalidArgument,
                  "latency needs at least one repeat, got " + std::to_string(repeats));
  const bool cuda = is_cuda(inputs);
  LatencyStats stats;
  stats.warmup = std::max(warmup, 0);
  stats.repeats = repeats;
  stats.batch_size = inputs.empty() || inputs.front().dim() == 0 ? 1 : inputs.front().size(0);
  for (int i = 0; i < stats.warmup; ++i) {
    if (cancelled && cancelled()) return cancelled_status("during the latency warm-up");
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor ignored, run_forward(module, inputs, "model"));
    (void)ignored;
  }
  synchronize_if_cuda(cuda);
  for (int i = 0; i < repeats; ++i) {
    if (cancelled && cancelled()) return cancelled_status("during the latency measurement");
    auto start = std::chrono::steady_clock::now();
    auto output = run_forward(module, inputs, "model");
    synchronize_if_cuda(cuda);
    auto end = std::chrono::steady_clock::now();
    if (!output) return std::move(output).take_status();
    stats.samples_ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  stats.p50 = percentile(stats.samples_ms, 0.5);
  stats.p90 = percentile(stats.samples_ms, 0.9);
  stats.min = *std::min_element(stats.samples_ms.begin(), stats.samples_ms.end());
  double total = 0;
  for (double sample : stats.samples_ms) total += sample;
  stats.mean = total / static_cast<double>(stats.samples_ms.size());
  return stats;
}

// ---- memory ----

Result<PeakMemory> measure_peak_memory(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs) {
  if (is_cuda(inputs)) {
#ifdef PROFAGENT_EVALUATION_WITH_CUDA
    const c10::DeviceIndex index = inputs.front().device().index();
    torch::cuda::synchronize();
    c10::cuda::CUDACachingAllocator::resetPeakStats(index);
    const std::int64_t before =
        c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].current;
    {
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor output, run_forward(module, inputs, "model"));
      torch::cuda::synchronize();
      (void)output;
    }
    // [0] is StatType::AGGREGATE (all pools) in 1.13 and 2.x alike.
    const std::int64_t peak = c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].peak;
    return PeakMemory{std::max<std::int64_t>(peak - before, 0), "cuda_caching_allocator"};
#else
    return Status(
        ErrorCode::kUnsupported,
        "peak CUDA memory needs profagent built against a LibTorch with CUDA (this one is CPU-only)");
#endif
  }
  auto tracker = std::make_shared<PeakMemoryTracker>();
  {
    c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, tracker);
    // The output is released inside the guard: its memory is part of the forward's peak, and freeing
    // it here keeps the allocator's table of tracked blocks from keeping its address.
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor output, run_forward(module, inputs, "model"));
    output = torch::Tensor();
  }
  return PeakMemory{tracker->peak(), "c10_cpu_allocator"};
}

// ---- size and parameters ----

ParameterStats parameter_stats(const torch::jit::Module& module) {
  ParameterStats stats;
  for (const auto& parameter : module.parameters()) {
    stats.params += parameter.numel();
    stats.param_bytes += parameter.numel() * static_cast<std::int64_t>(parameter.element_size());
  }
  for (const auto& buffer : module.buffers())
    stats.buffer_bytes += buffer.numel() * static_cast<std::int64_t>(buffer.element_size());
  return stats;
}

Result<ModelSize> model_size(const torch::jit::Module& module, const Json& summary,
                             const fs::path& work_dir) {
  if (summary.is_object() && summary.contains("path") && summary["path"].is_string()) {
    const fs::path path = summary["path"].get<std::string>();
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
      auto bytes = fs::file_size(path, ec);
      if (ec)
        return Status(ErrorCode::kIo,
                      "cannot read the size of the model file " + path.string() + ": " + ec.message());
      return ModelSize{static_cast<std::int64_t>(bytes), "file"};
    }
  }
  // Saved as model.pt, the name ModelArtifact::save uses: a TorchScript archive prefixes every
  // record with the file's stem, so another name would give another size.
  const fs::path dir = work_dir / ("size_probe-" + std::to_string(::getpid()));
  const fs::path file = dir / "model.pt";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create the directory " + dir.string() + ": " + ec.message());
  std::error_code ignored;
  try {
    module.save(file.string());
  } catch (const std::exception& e) {
    fs::remove_all(dir, ignored);
    return Status(ErrorCode::kIo,
                  "cannot save the model to " + file.string() + " to measure its size: " + torch_reason(e));
  }
  auto bytes = fs::file_size(file, ec);
  fs::remove_all(dir, ignored);
  if (ec) return Status(ErrorCode::kIo, "cannot read the size of " + file.string() + ": " + ec.message());
  return ModelSize{static_cast<std::int64_t>(bytes), "saved"};
}

// ---- environment ----

Json blas_info() {
  Json blas = Json::object();
  blas["build"] = blas_build_info();
  std::vector<std::string> libraries;
  dl_iterate_phdr(collect_blas_library, &libraries);
  blas["openblas"] = false;
  if (libraries.empty()) {
    blas["library"] = nullptr;
    return blas;
  }
  // The generic libblas.so first: on Debian the alternatives link behind it decides the implementation
  // (OpenBLAS, BLIS, reference); OpenBLAS's own libopenblas.so is loaded beside it as a dependency.
  std::stable_partition(libraries.begin(), libraries.end(), [](const std::string& path) {
    return fs::path(path).filename().string().rfind("libblas.so", 0) == 0;
  });
  std::error_code ec;
  fs::path resolved = fs::canonical(libraries.front(), ec);
  blas["library"] = ec ? libraries.front() : resolved.string();
  for (const std::string& library : libraries) {
    // RTLD_NOLOAD: only a handle to what is already loaded; never loads a second BLAS.
    void* handle = ::dlopen(library.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) continue;
    using ConfigFn = char* (*)();
    auto config = reinterpret_cast<ConfigFn>(::dlsym(handle, "openblas_get_config"));
    if (config) {
      blas["openblas"] = true;
      if (const char* text = config()) blas["openblas_config"] = trim(text);
      using ThreadsFn = int (*)();
      if (auto threads = reinterpret_cast<ThreadsFn>(::dlsym(handle, "openblas_get_num_threads")))
        blas["openblas_threads"] = threads();
    }
    ::dlclose(handle);
    if (blas["openblas"].get<bool>()) break;
  }
  return blas;
}

Json environment_info(const torch::Device& device) {
  Json environment = Json::object();
  environment["libtorch"] = TORCH_VERSION;
  environment["blas"] = blas_info();
  environment["quantized_engine"] = quantized_engine_name(at::globalContext().qEngine());
  environment["threads"] = at::get_num_threads();
  environment["interop_threads"] = at::get_num_interop_threads();
  environment["parallel_backend"] = parallel_backend();
  environment["cpu"] = cpu_model_name();
  environment["device"] = device.str();
  return environment;
}

// ---- counters ----

Status AccuracyCounter::add(const torch::Tensor& logits, const torch::Tensor& labels) {
  if (logits.dim() != 2 || labels.dim() != 1 || logits.size(0) != labels.size(0))
    return Status(ErrorCode::kValidation,
                  "accuracy needs logits [N, classes] and labels [N]; the model returned " +
                      shape_text(logits.sizes()) + " for labels " + shape_text(labels.sizes()));
  const std::int64_t k = std::min<std::int64_t>(5, logits.size(1));
  torch::Tensor targets = labels.to(logits.device(), torch::kLong);
  torch::Tensor top = std::get<1>(logits.topk(k, /*dim=*/1));
  top1 += logits.argmax(1).eq(targets).sum().item<std::int64_t>();
  top5 += top.eq(targets.unsqueeze(1)).any(1).sum().item<std::int64_t>();
  samples += logits.size(0);
  return Status::ok();
}

Status AgreementCounter::add(const torch::Tensor& output, const torch::Tensor& reference_output) {
  if (output.sizes() != reference_output.sizes())
    return Status(ErrorCode::kValidation, "the model's output " + shape_text(output.sizes()) +
                                              " and the reference's " + shape_text(reference_output.sizes()) +
                                              " differ in shape, so they cannot be compared");
  torch::Tensor a = output.detach().to(torch::kFloat32);
  torch::Tensor b = reference_output.to(a.device(), torch::kFloat32);
  if (a.numel() > 0) max_abs_diff = std::max(max_abs_diff, (a - b).abs().max().item<double>());
  const std::int64_t n = a.dim() == 0 ? 1 : a.size(0);
  if (a.dim() >= 2) {
    // Per sample for [N, C] logits; per position for dense outputs ([N, C, H, W]: per pixel).
    torch::Tensor same = a.argmax(1).eq(b.argmax(1)).reshape({n, -1}).to(torch::kFloat64).mean(1);
    same_top1 += same.sum().item<double>();
    top1_samples += n;
  }
  samples += n;
  return Status::ok();
}

Json AgreementCounter::to_json() const {
  Json json = Json{{"max_abs_diff", max_abs_diff}, {"samples", samples}};
  if (top1_samples > 0) json["top1"] = same_top1 / static_cast<double>(top1_samples);
  return json;
}

// ---- configuration ----

void add_evaluation_config(ConfigSchema& schema) {
  schema.add("dataset", ConfigType::kMap)
      .describe(
          "the dataset to measure accuracy on: {format: idx|cifar|image_folder (a dataset provider id), "
          "...that provider's config}; without it (or with an empty map, e.g. a workflow var set to {}) only "
          "latency, size, MACs, memory and agreement are measured");
  schema.add("batch_size", ConfigType::kInt)
      .default_value(256)
      .min(1)
      .describe("samples per forward on the dataset");
  schema.add("limit", ConfigType::kInt)
      .min(1)
      .describe(
          "evaluate only the first N samples of the dataset (or N random inputs for agreement without one)");
  schema.add("device", ConfigType::kEnum)
      .choices({"cpu", "cuda"})
      .default_value("cpu")
      .describe("where the models run; a model on another device is copied there, the artifact is unchanged");
  schema.add("threads", ConfigType::kInt)
      .min(1)
      .describe(
          "intra-op threads during the evaluation (at::set_num_threads; restored afterwards); default: "
          "unchanged");
  schema.add("warmup", ConfigType::kInt).default_value(5).min(0).describe("untimed forwards before timing");
  schema.add("repeats", ConfigType::kInt).default_value(30).min(1).describe("timed forwards");
  schema.add("latency_batch_size", ConfigType::kInt)
      .default_value(1)
      .min(1)
      .describe("the batch dimension of the input used for latency and peak memory");
  ConfigField dimension;
  dimension.type = ConfigType::kInt;
  dimension.min = 1;
  schema.add("input_shape", ConfigType::kList)
      .element(dimension)
      .min(1)
      .describe(
          "the model input's shape, batch first (e.g. [1, 3, 224, 224]), when no shapes input is "
          "connected; default: the dataset's sample shape");
  schema.add("measure_latency", ConfigType::kBool).default_value(true).describe("time forwards");
  schema.add("count_macs", ConfigType::kBool)
      .default_value(true)
      .describe("count multiply-accumulates of one sample (batch 1) on the traced path: `macs`");
}

Result<EvaluationOptions> evaluation_options(const Config& config) {
  EvaluationOptions options;
  try {
    options.batch_size = config.get_int("batch_size");
    if (config.has("limit")) options.limit = config.get_int("limit");
    options.device = config.get_string("device");
    if (config.has("threads")) options.threads = static_cast<int>(config.get_int("threads"));
    options.warmup = static_cast<int>(config.get_int("warmup"));
    options.repeats = static_cast<int>(config.get_int("repeats"));
    options.latency_batch_size = config.get_int("latency_batch_size");
    if (config.has("input_shape")) {
      std::vector<std::int64_t> shape;
      for (const Json& dim : config.get_list("input_shape")) shape.push_back(dim.get<std::int64_t>());
      options.input_shape = std::move(shape);
    }
    options.measure_latency = config.get_bool("measure_latency");
    options.count_macs = config.get_bool("count_macs");
  } catch (const StatusError& e) {
    return e.status();
  }
  return options;
}

Result<std::pair<std::string, Json>> split_dataset_config(const Json& dataset) {
  if (!dataset.is_object())
    return Status(ErrorCode::kInvalidArgument,
                  "dataset: expected a map with a 'format', got " + dataset.dump());
  if (!dataset.contains("format") || !dataset["format"].is_string() ||
      dataset["format"].get<std::string>().empty())
    return Status(ErrorCode::kInvalidArgument,
                  "dataset: 'format' is required and names the dataset provider (idx, cifar, image_folder)");
  Json rest = dataset;
  rest.erase("format");
  return std::make_pair(dataset["format"].get<std::string>(), std::move(rest));
}

Result<std::unique_ptr<torch_tk::Dataset>> make_dataset(AgentContext& context, const Json& dataset) {
  PROFAGENT_ASSIGN_OR_RETURN(auto split, split_dataset_config(dataset));
  auto made =
      context.make_provider_as<torch_tk::Dataset>(torch_tk::kDatasetInterface, split.first, split.second);
  if (!made) return std::move(made).take_status().with_context("making the dataset '" + split.first + "'");
  return std::move(made).value();
}

// ---- evaluation ----

Result<std::vector<InputSpec>> resolve_input_specs(const EvaluationInputs& inputs,
                                                   const EvaluationOptions& options) {
  std::vector<InputSpec> specs;
  if (inputs.shapes && !inputs.shapes->empty()) {
    specs = *inputs.shapes;
  } else if (options.input_shape && !options.input_shape->empty()) {
    specs.push_back(InputSpec{*options.input_shape, torch::kFloat32});
  } else if (inputs.dataset) {
    const torch_tk::DatasetInfo& info = inputs.dataset->info();
    if (info.size < 1 || info.sample_shape.empty())
      return Status(ErrorCode::kInvalidArgument,
                    "the dataset " + info.source + " has no samples to take the input shape from");
    // One real sample gives the element type the dataset's transforms produce.
    torch_tk::Batch sample;
    PROFAGENT_RETURN_IF_ERROR(inputs.dataset->read_batch({0}, sample));
    InputSpec spec;
    spec.shape.push_back(1);
    spec.shape.insert(spec.shape.end(), info.sample_shape.begin(), info.sample_shape.end());
    spec.dtype = sample.images.scalar_type();
    specs.push_back(std::move(spec));
  } else {
    return Status(ErrorCode::kInvalidArgument,
                  "no input shape for latency, memory and agreement: connect a `shapes` input, set "
                  "`input_shape` (e.g. [1, 3, 224, 224]) or configure a `dataset`");
  }
  for (InputSpec& spec : specs)
    if (!spec.shape.empty()) spec.shape[0] = options.latency_batch_size;
  return specs;
}

namespace {

Json shapes_json(const std::vector<InputSpec>& specs) {
  Json shapes = Json::array();
  for (const InputSpec& spec : specs)
    shapes.push_back(Json{{"shape", spec.shape}, {"dtype", scalar_type_name(spec.dtype)}});
  return shapes;
}

struct DatasetPass {
  AccuracyCounter accuracy;
  AgreementCounter agreement;
};

Result<DatasetPass> evaluate_on_dataset(torch::jit::Module& model, torch::jit::Module* reference,
                                        torch_tk::Dataset& dataset, const torch::Device& device,
                                        const EvaluationOptions& options, const EvaluationHooks& hooks,
                                        spdlog::logger& log) {
  const torch_tk::DatasetInfo& info = dataset.info();
  std::int64_t count = info.size;
  if (options.limit) count = std::min(count, *options.limit);
  if (count < 1) return Status(ErrorCode::kInvalidArgument, "the dataset " + info.source + " has no samples");
  const std::int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  DatasetPass pass;
  torch_tk::Batch batch;
  std::vector<std::int64_t> indices;
  for (std::int64_t b = 0; b < batches; ++b) {
    if (hooks.cancelled && hooks.cancelled())
      return cancelled_status("after " + std::to_string(b) + " of " + std::to_string(batches) + " batches");
    indices.clear();
    for (std::int64_t i = b * options.batch_size; i < std::min(count, (b + 1) * options.batch_size); ++i)
      indices.push_back(i);
    Status read = dataset.read_batch(indices, batch);
    if (!read)
      return std::move(read).with_context("reading batch " + std::to_string(b + 1) + " of " +
                                          std::to_string(batches) + " from " + info.source);
    std::vector<torch::Tensor> images{batch.images.to(device)};
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits, run_forward(model, images, "model"));
    if (b == 0 && logits.dim() == 2 && info.num_classes > 0 && logits.size(1) != info.num_classes)
      log.warn("the model has {} outputs but the dataset {} has {} classes", logits.size(1), info.source,
               info.num_classes);
    PROFAGENT_RETURN_IF_ERROR(pass.accuracy.add(logits, batch.labels));
    if (reference) {
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor expected, run_forward(*reference, images, "reference model"));
      PROFAGENT_RETURN_IF_ERROR(pass.agreement.add(logits, expected));
    }
    if (hooks.progress) hooks.progress(b + 1, batches);
  }
  return pass;
}

Result<AgreementCounter> agreement_on_random_inputs(torch::jit::Module& model, torch::jit::Module& reference,
                                                    const std::vector<InputSpec>& specs,
                                                    const torch::Device& device,
                                                    const EvaluationOptions& options,
                                                    const EvaluationHooks& hooks) {
  const std::int64_t count = options.limit.value_or(options.random_agreement_samples);
  const std::int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  AgreementCounter agreement;
  for (std::int64_t b = 0; b < batches; ++b) {
    if (hooks.cancelled && hooks.cancelled())
      return cancelled_status("after " + std::to_string(b) + " of " + std::to_string(batches) + " batches");
    const std::int64_t size = std::min(options.batch_size, count - b * options.batch_size);
    // A seed per batch (and apart from the latency input's), so any batch can be reproduced alone.
    std::vector<torch::Tensor> inputs =
        make_inputs(specs, size, options.seed + 1 + static_cast<std::uint64_t>(b), device);
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor output, run_forward(model, inputs, "model"));
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor expected, run_forward(reference, inputs, "reference model"));
    PROFAGENT_RETURN_IF_ERROR(agreement.add(output, expected));
    if (hooks.progress) hooks.progress(b + 1, batches);
  }
  return agreement;
}

}  // namespace

namespace {

Result<Json> evaluate_unguarded(const EvaluationInputs& inputs, const EvaluationOptions& options,
                                const EvaluationHooks& hooks) {
  spdlog::logger& log = hooks.log ? *hooks.log : profagent::log();
  if (!inputs.model) return Status(ErrorCode::kInvalidArgument, "no model to evaluate");
  if (options.batch_size < 1 || options.latency_batch_size < 1)
    return Status(ErrorCode::kInvalidArgument, "batch_size and latency_batch_size must be at least 1");
  if (options.device != "cpu" && options.device != "cuda")
    return Status(ErrorCode::kInvalidArgument,
                  "unknown device '" + options.device + "' (expected cpu or cuda)");
  if (options.device == "cuda" && !torch::cuda::is_available())
    return Status(ErrorCode::kUnsupported,
                  std::string("device 'cuda' was requested but CUDA is not available to ") + "LibTorch " +
                      TORCH_VERSION + " here (a CPU-only build, or no GPU)");
  const torch::Device device(options.device == "cuda" ? torch::kCUDA : torch::kCPU);

  // The count is process-wide: the stages after this one must run with the count they were given.
  torch_tk::ThreadsGuard threads(options.threads.value_or(0));
  torch::NoGradGuard no_grad;

  bool copied = false;
  PROFAGENT_ASSIGN_OR_RETURN(torch::jit::Module model,
                             prepare_module(*inputs.model, device, "model", &copied));
  if (copied)
    log.info("evaluating a copy of the model in eval mode on {} (the artifact is unchanged)", device.str());
  std::optional<torch::jit::Module> reference;
  if (inputs.reference) {
    PROFAGENT_ASSIGN_OR_RETURN(reference, prepare_module(*inputs.reference, device, "reference model"));
  }

  Json metrics = Json::object();
  if (inputs.dataset) {
    const torch_tk::DatasetInfo& info = inputs.dataset->info();
    metrics["dataset"] = Json{{"format", info.format},
                              {"source", info.source},
                              {"size", info.size},
                              {"num_classes", info.num_classes}};
    PROFAGENT_ASSIGN_OR_RETURN(DatasetPass pass,
                               evaluate_on_dataset(model, reference ? &*reference : nullptr, *inputs.dataset,
                                                   device, options, hooks, log));
    metrics["samples"] = pass.accuracy.samples;
    metrics["accuracy"] =
        static_cast<double>(pass.accuracy.top1) / static_cast<double>(pass.accuracy.samples);
    metrics["top5"] = static_cast<double>(pass.accuracy.top5) / static_cast<double>(pass.accuracy.samples);
    if (reference) {
      metrics["agreement"] = pass.agreement.to_json();
      metrics["agreement"]["inputs"] = "dataset";
    }
  }

  auto specs = resolve_input_specs(inputs, options);
  const bool needs_specs = options.measure_latency || (reference && !inputs.dataset);
  if (!specs && needs_specs) return std::move(specs).take_status();
  if (!specs) log.info("no input shape (shapes, input_shape or dataset): peak memory is not measured");
  if (specs) {
    metrics["input_shapes"] = shapes_json(specs.value());
    if (reference && !inputs.dataset) {
      PROFAGENT_ASSIGN_OR_RETURN(
          AgreementCounter agreement,
          agreement_on_random_inputs(model, *reference, specs.value(), device, options, hooks));
      metrics["agreement"] = agreement.to_json();
      metrics["agreement"]["inputs"] = "random";
      metrics["agreement"]["seed"] = options.seed + 1;
    }
    std::vector<torch::Tensor> example =
        make_inputs(specs.value(), options.latency_batch_size, options.seed, device);
    if (options.measure_latency) {
      PROFAGENT_ASSIGN_OR_RETURN(LatencyStats latency, measure_latency(model, example, options.warmup,
                                                                       options.repeats, hooks.cancelled));
      metrics["latency_ms"] = latency.to_json();
    } else {
      // The first runs of a TorchScript method profile and specialize its graph: not a steady forward.
      for (int i = 0; i < std::max(options.warmup, 2); ++i) {
        PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor ignored, run_forward(model, example, "model"));
        (void)ignored;
      }
    }
    if (options.count_macs) {
      // MACs per sample (batch 1), counted on the traced path like the profiler's, so a pruned model
      // and its baseline compare. A model whose ops the counter cannot count keeps its other metrics.
      std::vector<torch::jit::IValue> one_sample;
      for (torch::Tensor& input : make_inputs(specs.value(), 1, options.seed, device))
        one_sample.emplace_back(std::move(input));
      auto counted = torch_tk::static_profile(model, one_sample);
      if (counted)
        metrics["macs"] = counted->macs;
      else
        log.warn("MACs not counted: {}", counted.status().message());
    }
    if (hooks.cancelled && hooks.cancelled()) return cancelled_status("before measuring memory");
    auto memory = measure_peak_memory(model, example);
    if (memory) {
      metrics["peak_memory_bytes"] = memory->bytes;
      metrics["peak_memory_method"] = memory->method;
    } else if (memory.status().code() == ErrorCode::kUnsupported) {
      log.warn("peak memory not measured: {}", memory.status().message());
    } else {
      return std::move(memory).take_status();
    }
  }

  PROFAGENT_ASSIGN_OR_RETURN(ModelSize size,
                             model_size(*inputs.model, inputs.model_summary, inputs.work_dir));
  metrics["size_bytes"] = size.bytes;
  metrics["size_source"] = size.source;
  const ParameterStats parameters = parameter_stats(*inputs.model);
  metrics["params"] = parameters.params;
  metrics["param_bytes"] = parameters.param_bytes;
  metrics["buffer_bytes"] = parameters.buffer_bytes;
  metrics["environment"] = environment_info(device);
  return metrics;
}

}  // namespace

Result<Json> evaluate(const EvaluationInputs& inputs, const EvaluationOptions& options,
                      const EvaluationHooks& hooks) {
  // Forwards report their own errors; this catches what the tensor bookkeeping around them may throw
  // (an output of an unexpected dtype, a failed copy to the device), so no exception leaves the stage.
  try {
    return evaluate_unguarded(inputs, options, hooks);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "the evaluation failed: " + torch_reason(e));
  }
}

}  // namespace profagent::agents

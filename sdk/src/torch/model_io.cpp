#include "profagent/torch/model_io.hpp"

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

#ifdef PROFAGENT_TORCH_WITH_CUDA
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

#include "profagent/log.hpp"
#include "profagent/text.hpp"
#include "profagent/torch/allocation_counter.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/torch/heap.hpp"
#include "profagent/torch/threads.hpp"

namespace profagent::torch_tk {

namespace fs = std::filesystem;

std::string shape_text(c10::IntArrayRef sizes) {
  std::string text = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) text += (i ? ", " : "") + std::to_string(sizes[i]);
  return text + "]";
}

std::string shapes_text(const std::vector<torch::Tensor>& tensors) {
  std::string text;
  for (std::size_t i = 0; i < tensors.size(); ++i) text += (i ? ", " : "") + shape_text(tensors[i].sizes());
  return text;
}

namespace {

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

Result<std::vector<InputSpec>> resolve_input_specs(const InputSources& sources, std::int64_t batch,
                                                   const std::string& purpose) {
  std::vector<InputSpec> specs;
  const Json& meta = sources.model_metadata;
  if (sources.shapes && !sources.shapes->empty()) {
    specs = *sources.shapes;
  } else if (sources.input_shape && !sources.input_shape->empty()) {
    specs.push_back(InputSpec{*sources.input_shape, torch::kFloat32});
  } else if (meta.is_object() && meta.contains("input_shapes") && meta["input_shapes"].is_array() &&
             !meta["input_shapes"].empty()) {
    Json spec{{"inputs", Json::array()}};
    for (const Json& shape : meta["input_shapes"])
      spec["inputs"].push_back(Json{{"shape", shape}, {"dtype", meta.value("dtype", "float32")}});
    auto stored = input_specs_from_shape_spec(spec);
    if (!stored) return std::move(stored).take_status().with_context("reading the input shapes stored in the model");
    specs = std::move(stored).value();
  } else if (sources.dataset) {
    const DatasetInfo& info = sources.dataset->info();
    if (info.size < 1 || info.sample_shape.empty())
      return Status(ErrorCode::kInvalidArgument,
                    "the dataset " + info.source + " has no samples to take the input shape from");
    // One real sample gives the element type the dataset's transforms produce.
    Batch sample;
    PROFAGENT_RETURN_IF_ERROR(sources.dataset->read_batch({0}, sample));
    InputSpec spec;
    spec.shape.push_back(1);
    spec.shape.insert(spec.shape.end(), info.sample_shape.begin(), info.sample_shape.end());
    spec.dtype = sample.images.scalar_type();
    specs.push_back(std::move(spec));
  } else {
    return Status(ErrorCode::kInvalidArgument,
                  "no input shape for " + purpose +
                      ": connect a `shapes` input (shape_resolver.spec), set `input_shape` (e.g. [1, 3, 224, "
                      "224]), use a model file that stores its input_shapes (profagent_meta.json) or configure a "
                      "`dataset`");
  }
  for (InputSpec& spec : specs)
    if (!spec.shape.empty()) spec.shape[0] = batch;
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

Result<std::vector<c10::IValue>> example_inputs(const Json& shape_spec, const Json& model_metadata,
                                                const std::string& purpose) {
  InputSources sources;
  if (!shape_spec.is_null()) {
    auto specs = input_specs_from_shape_spec(shape_spec);
    if (!specs) return std::move(specs).take_status().with_context("reading input port 'shapes'");
    sources.shapes = std::move(specs).value();
  }
  sources.model_metadata = model_metadata;
  PROFAGENT_ASSIGN_OR_RETURN(auto specs, resolve_input_specs(sources, 1, purpose));
  std::vector<c10::IValue> inputs;
  for (torch::Tensor& input : make_inputs(specs, 1, 0, torch::kCPU)) inputs.emplace_back(std::move(input));
  return inputs;
}

namespace {

void append_output_tensors(const c10::IValue& value, std::vector<torch::Tensor>& out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTupleRef().elements()) append_output_tensors(element, out);
  } else if (value.isList()) {
    for (const auto& element : value.toListRef()) append_output_tensors(element, out);
  } else if (value.isGenericDict()) {
    for (const auto& entry : value.toGenericDict()) append_output_tensors(entry.value(), out);
  }
}

// A NamedTuple's field names; empty for a plain tuple.
std::vector<std::string> tuple_field_names(const c10::IValue& value) {
  std::vector<std::string> names;
  const auto type = value.toTupleRef().type();
  if (type && type->schema())
    for (const auto& argument : type->schema()->arguments()) names.push_back(argument.name());
  return names;
}

// What an output holds, for errors: "Tuple(logits: Tensor, aux: None)", "Dict(out, aux)".
std::string describe_output(const c10::IValue& value) {
  std::string text;
  if (value.isTuple()) {
    const auto names = tuple_field_names(value);
    const auto& elements = value.toTupleRef().elements();
    for (std::size_t i = 0; i < elements.size(); ++i)
      text += (i ? ", " : "") + (i < names.size() ? names[i] + ": " : "") + elements[i].tagKind();
    return "Tuple(" + text + ")";
  }
  if (value.isGenericDict()) {
    for (const auto& entry : value.toGenericDict())
      text += (text.empty() ? "" : ", ") + (entry.key().isString() ? entry.key().toStringRef() : entry.key().tagKind());
    return "Dict(" + text + ")";
  }
  if (value.isList()) return "List[" + std::to_string(value.toListRef().size()) + "]";
  return value.tagKind();
}

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<torch::Tensor> output_tensors(const c10::IValue& output) {
  std::vector<torch::Tensor> tensors;
  append_output_tensors(output, tensors);
  return tensors;
}

Result<torch::Tensor> select_output(const c10::IValue& output, const std::string& which,
                                    const std::string& model_name) {
  auto none = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "the " + model_name + "'s forward returned " +
                                                   describe_output(output) + ": " + why);
  };
  if (output.isTensor()) {
    if (which.empty() || which == "0") return output.toTensor();
    return none("a single tensor has no output '" + which + "'");
  }
  std::vector<c10::IValue> members;
  std::vector<std::string> names;
  if (output.isTuple()) {
    members = output.toTupleRef().elements().vec();
    names = tuple_field_names(output);
  } else if (output.isList()) {
    for (const c10::IValue& element : output.toListRef()) members.push_back(element);
  } else if (output.isGenericDict()) {
    for (const auto& entry : output.toGenericDict()) {
      members.push_back(entry.value());
      names.push_back(entry.key().isString() ? entry.key().toStringRef() : "");
    }
  } else {
    return none("not a tensor, tuple, list or dict");
  }
  if (!which.empty()) {
    std::size_t at = members.size();
    if (all_digits(which) && !output.isGenericDict()) {
      at = static_cast<std::size_t>(std::stoul(which));
    } else {
      at = static_cast<std::size_t>(std::find(names.begin(), names.end(), which) - names.begin());
    }
    if (at >= members.size()) return none("no output '" + which + "'");
    if (!members[at].isTensor()) return none("output '" + which + "' is " + members[at].tagKind() + ", not a tensor");
    return members[at].toTensor();
  }
  if (output.isGenericDict()) {
    for (const char* preferred : {"out", "logits"}) {
      auto at = std::find(names.begin(), names.end(), preferred);
      if (at != names.end() && members[static_cast<std::size_t>(at - names.begin())].isTensor())
        return members[static_cast<std::size_t>(at - names.begin())].toTensor();
    }
  }
  for (const c10::IValue& member : members)
    if (member.isTensor()) return member.toTensor();
  return none("no tensor member (set the stage's `output` to choose one)");
}

Result<torch::Tensor> run_forward(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs,
                                  const std::string& model_name, const std::string& which) {
  std::vector<c10::IValue> arguments(inputs.begin(), inputs.end());
  c10::IValue output;
  try {
    output = module.forward(std::move(arguments));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "the " + model_name + "'s forward failed on input of shape " +
                                           shapes_text(inputs) + ": " + torch_error_reason(e));
  }
  return select_output(output, which, model_name);
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
                                           device.str() + ": " + torch_error_reason(e));
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
    if (cancelled && cancelled()) return cancelled_status("evaluation", "during the latency warm-up");
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor ignored, run_forward(module, inputs, "model"));
    (void)ignored;
  }
  synchronize_if_cuda(cuda);
  for (int i = 0; i < repeats; ++i) {
    if (cancelled && cancelled()) return cancelled_status("evaluation", "during the latency measurement");
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
#ifdef PROFAGENT_TORCH_WITH_CUDA
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
  auto tracker = std::make_shared<AllocationCounter>(c10::DeviceType::CPU);
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
                  "cannot save the model to " + file.string() + " to measure its size: " + torch_error_reason(e));
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
  environment["thread_pools"] = thread_pools();  // every pool a forward can use, OpenBLAS's too
  environment["parallel_backend"] = parallel_backend();
  environment["heap"] = heap_settings();  // whether freed memory is kept for reuse (heap.hpp)
  environment["cpu"] = cpu_model_name();
  environment["device"] = device.str();
  return environment;
}

}  // namespace profagent::torch_tk

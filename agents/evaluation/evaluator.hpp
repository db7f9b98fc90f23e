#pragma once
// What the evaluation stage measures, as plain library code: accuracy on a dataset, agreement with a
// reference model, latency, size, parameters, peak memory of one forward, and the environment the
// numbers were taken in. The agent (evaluation_agent.cpp) only adapts the blackboard to evaluate();
// tests call these functions directly. Dataset readers are providers (profagent/torch/dataset.hpp),
// which this header only forward-declares so that it costs no more than <torch/script.h>.
#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "profagent/config_schema.hpp"
#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace spdlog {
class logger;
}

namespace profagent {
class AgentContext;
namespace torch_tk {
class Dataset;
}
}  // namespace profagent

namespace profagent::agents {

// One model input: its full shape (batch dimension first) and element type.
struct InputSpec {
  std::vector<std::int64_t> shape;
  torch::ScalarType dtype = torch::kFloat32;
};

// "float32", "float", "fp32", "float16", "half", "bfloat16", "float64", "int64", "int32", "uint8",
// "int8", "bool" -> the ScalarType, or kInvalidArgument naming the unknown name.
Result<torch::ScalarType> scalar_type_from_name(const std::string& name);
// The canonical name of a ScalarType ("float32", "int64", ...).
std::string scalar_type_name(torch::ScalarType type);

// Reads a shape_spec artifact's summary: {"inputs": [{"shape": [1, 3, 224, 224], "dtype": "float32"}]}
// (dtype optional, float32 by default). Errors name the offending entry.
Result<std::vector<InputSpec>> input_specs_from_shape_spec(const Json& spec);

// Inputs for timing and agreement: each spec's shape with its first dimension set to `batch` (a 0-d
// spec is kept as is), drawn from a generator seeded with `seed` on the CPU and then moved to
// `device`, so the same seed gives the same values on every device. Floating types are standard
// normal; integer and bool types are 0 or 1 (valid indices for any embedding table).
std::vector<torch::Tensor> make_inputs(const std::vector<InputSpec>& specs, std::int64_t batch,
                                       std::uint64_t seed, const torch::Device& device);

// Runs forward() and returns its output as one tensor: the tensor itself, or the first tensor of a
// tuple or list (classifiers that also return auxiliary outputs). Torch errors become kRuntime with
// the reason on one line and `model_name` and the input shapes named.
Result<torch::Tensor> run_forward(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs,
                                  const std::string& model_name);

// `module` ready to evaluate on `device`: the same module when it is already in eval mode (every
// submodule) with its tensors on `device`; otherwise a clone switched to eval and moved, because a
// published model artifact is shared and must not change. `changed` says which it was.
Result<torch::jit::Module> prepare_module(const torch::jit::Module& module, const torch::Device& device,
                                          const std::string& model_name, bool* changed = nullptr);

using CancelCheck = std::function<bool()>;

// Linear-interpolation percentile (numpy's default) of unsorted samples; q in [0, 1].
double percentile(std::vector<double> samples, double q);

struct LatencyStats {
  double p50 = 0, p90 = 0, mean = 0, min = 0;  // milliseconds per forward of one batch
  int warmup = 0;
  int repeats = 0;
  std::int64_t batch_size = 0;
  std::vector<double> samples_ms;  // every timed repeat, in order
  Json to_json() const;            // {p50, p90, mean, min, warmup, repeats, batch_size}
};

// `warmup` untimed forwards (the profiling executor specializes the graph during the first runs),
// then `repeats` forwards each timed on its own with a steady clock (CUDA synchronized around each).
// Returns kCancelled as soon as `cancelled` says so.
Result<LatencyStats> measure_latency(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs,
                                     int warmup, int repeats, const CancelCheck& cancelled = {});

struct PeakMemory {
  std::int64_t bytes = 0;  // the most bytes held at once by tensors allocated during the forward
  std::string method;      // how it was measured (see measure_peak_memory)
};

// The peak extra memory of one forward of `module` on `inputs`, the inputs and weights excluded.
// CPU ("c10_cpu_allocator"): every allocation and free that goes through c10's CPU allocator on this
// thread is reported to a c10::MemoryReportingInfoBase installed with c10::DebugInfoGuard, the hook
// torch.profiler(profile_memory=True) uses; the peak of the running sum is the answer. It sees every
// ATen tensor (outputs, intermediates, im2col buffers), not memory that libraries allocate on their
// own (oneDNN and OpenBLAS scratch) nor tensors allocated inside OpenMP worker threads.
// CUDA ("cuda_caching_allocator"): the caching allocator's allocated-bytes peak, reset before the
// forward, minus what was allocated before it; only in builds of LibTorch with CUDA.
Result<PeakMemory> measure_peak_memory(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs);

struct ParameterStats {
  std::int64_t params = 0;        // sum of numel over parameters (recursively)
  std::int64_t param_bytes = 0;   // sum of numel * element size over parameters
  std::int64_t buffer_bytes = 0;  // the same over buffers (BatchNorm statistics, ...)
};
ParameterStats parameter_stats(const torch::jit::Module& module);

struct ModelSize {
  std::int64_t bytes = 0;
  std::string source;  // "file": the artifact's `path`; "saved": the module saved to the work dir
};
// The model's size on disk: the file the artifact summary's `path` names when it exists, otherwise
// the module saved as model.pt (the name a model artifact is saved under, which the archive's size
// depends on) below `work_dir`, removed again after measuring: the run keeps the model already.
Result<ModelSize> model_size(const torch::jit::Module& module, const Json& summary,
                             const std::filesystem::path& work_dir);

// {libtorch, blas: {build, library, openblas, openblas_config?}, quantized_engine, threads,
// interop_threads, parallel_backend, cpu, device}. `blas.library` is the BLAS shared library
// actually loaded in this process, which is what decides fp32 matmul speed on Debian.
Json environment_info(const torch::Device& device);
Json blas_info();

// Top-1 / top-5 counts over batches of logits [N, C] and int64 labels [N].
struct AccuracyCounter {
  std::int64_t samples = 0, top1 = 0, top5 = 0;
  Status add(const torch::Tensor& logits, const torch::Tensor& labels);
};

// How often two models' top-1 predictions agree, and the largest absolute difference of their outputs.
struct AgreementCounter {
  std::int64_t samples = 0;
  std::int64_t top1_samples = 0;  // samples with a class dimension (outputs of 2 or more dims)
  // Samples whose top-1 agree; for dense outputs ([N, C, H, W]) each sample adds the fraction of
  // its positions that agree.
  double same_top1 = 0;
  double max_abs_diff = 0;
  Status add(const torch::Tensor& output, const torch::Tensor& reference_output);
  Json to_json() const;  // {top1 (same_top1 / top1_samples, when any), max_abs_diff, samples}
};

struct EvaluationOptions {
  std::int64_t batch_size = 256;
  std::optional<std::int64_t> limit;
  std::string device = "cpu";
  std::optional<int> threads;
  int warmup = 5;
  int repeats = 30;
  std::int64_t latency_batch_size = 1;
  std::optional<std::vector<std::int64_t>> input_shape;
  bool measure_latency = true;
  bool count_macs = true;  // `macs` of one sample, from the static profile
  // Random inputs compared with the reference when there is no dataset (and no limit).
  std::int64_t random_agreement_samples = 32;
  std::uint64_t seed = 0;
};

// The evaluation agent's config schema and its reading. `dataset` is kept out of the options: the
// agent turns it into a provider (make_dataset).
void add_evaluation_config(ConfigSchema& schema);
Result<EvaluationOptions> evaluation_options(const Config& config);

// Splits the `dataset` config map into the provider id (its `format`) and the provider's own config.
Result<std::pair<std::string, Json>> split_dataset_config(const Json& dataset);
// Makes the dataset provider the `dataset` config map names, through the context.
Result<std::unique_ptr<torch_tk::Dataset>> make_dataset(AgentContext& context, const Json& dataset);

struct EvaluationInputs {
  const torch::jit::Module* model = nullptr;  // required
  Json model_summary = Json::object();        // the model artifact's summary (for `path`)
  const torch::jit::Module* reference = nullptr;
  std::optional<std::vector<InputSpec>> shapes;  // from a shape_spec input
  torch_tk::Dataset* dataset = nullptr;
  std::filesystem::path work_dir;  // where the model is saved when it has no file
};

struct EvaluationHooks {
  CancelCheck cancelled;                     // checked before every batch and timed repeat
  std::function<void(long, long)> progress;  // (batches done, batches in all)
  spdlog::logger* log = nullptr;             // null: profagent::log()
};

// The input used for latency and memory: `shapes` when given, else `options.input_shape`, else the
// dataset's sample shape with a batch of 1; in each case with the batch dimension set to
// options.latency_batch_size. kInvalidArgument naming the three ways when none applies.
Result<std::vector<InputSpec>> resolve_input_specs(const EvaluationInputs& inputs,
                                                   const EvaluationOptions& options);

// Everything together: the metrics document the evaluation stage publishes (see evaluation_agent.cpp
// for its keys). Returns kCancelled when `hooks.cancelled` turns true.
Result<Json> evaluate(const EvaluationInputs& inputs, const EvaluationOptions& options,
                      const EvaluationHooks& hooks = {});

}  // namespace profagent::agents

#pragma once
// Model I/O shared by every agent that runs a model: the inputs a shape_spec describes, one forward
// whatever the model returns, the module prepared for a device, latency statistics, peak memory of a
// forward, parameter counts, size on disk, the environment the numbers were taken in, and the one
// helper that turns a torch error into a readable line.
#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"
#include "profagent/torch/errors.hpp"

namespace profagent::torch_tk {

class Dataset;

// "[1, 3, 224, 224]"; several tensors joined with ", ".
std::string shape_text(c10::IntArrayRef sizes);
std::string shapes_text(const std::vector<torch::Tensor>& tensors);

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

// Where a stage's example input comes from, in the one fallback order every agent uses:
//   1. the `shapes` input (a shape_spec, e.g. shape_resolver.spec), parsed;
//   2. the stage's `input_shape` config (one float32 input);
//   3. the shapes stored in the model file (profagent_meta.json: input_shapes, dtype);
//   4. the dataset's sample shape, with a batch of 1 and the element type its transforms produce.
struct InputSources {
  std::optional<std::vector<InputSpec>> shapes;
  std::optional<std::vector<std::int64_t>> input_shape;
  Json model_metadata;  // the model artifact's metadata(); null when it has none
  torch_tk::Dataset* dataset = nullptr;
};

// The first source that applies, with every spec's batch dimension set to `batch` (0-d specs kept).
// kInvalidArgument naming the ways to give a shape (for `purpose`, e.g. "latency and memory") when
// none applies.
Result<std::vector<InputSpec>> resolve_input_specs(const InputSources& sources, std::int64_t batch,
                                                   const std::string& purpose);

// One example input of batch 1 (seed 0, CPU) for the engines that analyse a model (pruning graph,
// analysis evidence): from a `shapes` artifact's summary when `shape_spec` is not null, else from the
// model's stored shapes, in resolve_input_specs' order; errors name `purpose`.
Result<std::vector<c10::IValue>> example_inputs(const Json& shape_spec, const Json& model_metadata,
                                                const std::string& purpose);

// Inputs for timing and agreement: each spec's shape with its first dimension set to `batch` (a 0-d
// spec is kept as is), drawn from a generator seeded with `seed` on the CPU and then moved to
// `device`, so the same seed gives the same values on every device. Floating types are standard
// normal; integer and bool types are 0 or 1 (valid indices for any embedding table).
std::vector<torch::Tensor> make_inputs(const std::vector<InputSpec>& specs, std::int64_t batch,
                                       std::uint64_t seed, const torch::Device& device);

// ---- a forward's output, whatever its structure ----
//
// Models return a tensor, a tuple, a NamedTuple (googlenet: logits, aux2, aux1, the aux members None
// in eval mode), a list or a dict (torchvision's segmentation models: {"out", "aux"}). This is the
// one place that reads such outputs.

// Every tensor in an output, in order: the tensor itself, or the members of a tuple, NamedTuple or
// list and the values of a dict (insertion order), recursively. None members are skipped.
std::vector<torch::Tensor> output_tensors(const c10::IValue& output);

// Which output is "the" prediction (the logits accuracy is counted on, the output agreement compares):
//  - `which` empty (the default rule): a tensor is itself; a tuple, NamedTuple or list gives its first
//    tensor member; a dict its "out" entry, else its "logits" entry, else its first tensor value.
//  - `which` a name: that dict key or NamedTuple field; `which` digits: that position of a tuple or
//    list (0-based). A stage sets it with its `output` config key.
// kInvalidArgument names what the output holds when the selection finds no tensor.
Result<torch::Tensor> select_output(const c10::IValue& output, const std::string& which,
                                    const std::string& model_name);

// Runs forward() and returns select_output(output, which). Torch errors become kRuntime with the
// reason on one line and `model_name` and the input shapes named.
Result<torch::Tensor> run_forward(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs,
                                  const std::string& model_name, const std::string& which = "");

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

}  // namespace profagent::torch_tk

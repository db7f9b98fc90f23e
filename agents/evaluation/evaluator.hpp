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
#include "profagent/options.hpp"
#include "profagent/json.hpp"
#include "profagent/status.hpp"
#include "profagent/torch/model_io.hpp"

namespace spdlog {
class logger;
}

PROFAGENT_ABI_NAMESPACE_BEGIN
class AgentContext;
PROFAGENT_ABI_NAMESPACE_END
namespace profagent {
namespace torch_tk {
class Dataset;
}
}  // namespace profagent

namespace profagent::agents {

using torch_tk::InputSpec;
using torch_tk::CancelCheck;

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
  std::string output;  // which output is the prediction (torch_tk::select_output); empty: the default rule
  Json dataset;        // {format: ..., ...} or null; the agent turns it into a provider (make_dataset)
};

// The evaluation agent's config: schema, defaults and reading in one declaration.
const OptionsSchema<EvaluationOptions>& evaluation_options_schema();

struct EvaluationInputs {
  const torch::jit::Module* model = nullptr;  // required
  Json model_summary = Json::object();        // the model artifact's summary (for `path`)
  Json model_metadata;                        // the model artifact's metadata (stored input shapes)
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

// The input used for latency, memory and agreement: torch_tk::resolve_input_specs's one fallback
// order (shapes input, input_shape, the model's stored shapes, the dataset's sample shape) with the
// batch dimension set to options.latency_batch_size.
Result<std::vector<InputSpec>> resolve_input_specs(const EvaluationInputs& inputs,
                                                   const EvaluationOptions& options);

// Everything together: the metrics document the evaluation stage publishes (see evaluation_agent.cpp
// for its keys). Returns kCancelled when `hooks.cancelled` turns true.
Result<Json> evaluate(const EvaluationInputs& inputs, const EvaluationOptions& options,
                      const EvaluationHooks& hooks = {});

}  // namespace profagent::agents

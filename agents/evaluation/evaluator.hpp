#pragma once
// What the evaluation stage measures, as plain library code: accuracy on a dataset, agreement with a
// reference model, latency, size, parameters, peak memory of one forward, and the environment the
// numbers were taken in. The agent (evaluation_agent.cpp) only adapts the blackboard to evaluate();
// tests call these functions directly. The parts live in files of their own: the counters
// (counters.hpp), the config (evaluation_options.hpp), the dataset pass (dataset_pass.hpp), the
// agreement on random inputs (random_agreement.hpp) and the measurements on one example input
// (example_measures.hpp). Dataset readers are providers (profagent/torch/dataset.hpp), which this
// header only forward-declares so that it costs no more than <torch/script.h>.
#include <torch/script.h>

#include <filesystem>
#include <optional>
#include <vector>

#include "counters.hpp"
#include "evaluation_hooks.hpp"
#include "evaluation_options.hpp"
#include "profagent/json.hpp"
#include "profagent/status.hpp"
#include "profagent/torch/model_io.hpp"

namespace profagent {
namespace torch_tk {
class Dataset;
}
}  // namespace profagent

namespace profagent::agents {

using torch_tk::InputSpec;
using torch_tk::CancelCheck;

struct EvaluationInputs {
  const torch::jit::Module* model = nullptr;  // required
  Json model_summary = Json::object();        // the model artifact's summary (for `path`)
  Json model_metadata;                        // the model artifact's metadata (stored input shapes)
  const torch::jit::Module* reference = nullptr;
  std::optional<std::vector<InputSpec>> shapes;  // from a shape_spec input
  torch_tk::Dataset* dataset = nullptr;
  std::filesystem::path work_dir;  // where the model is saved when it has no file
};

// The input used for latency, memory and agreement: torch_tk::resolve_input_specs's one fallback
// order (shapes input, input_shape, the model's stored shapes, the dataset's sample shape) with the
// batch dimension set to options.latency_batch_size.
Result<std::vector<InputSpec>> resolve_input_specs(const EvaluationInputs& inputs,
                                                   const EvaluationOptions& options);

// Everything together: the metrics document the evaluation stage publishes (see evaluation_agent.cpp
// for its keys). Returns kCancelled when `hooks.cancelled` turns true. Phases recorded on
// hooks.phases: "prepare" (the models made ready for the device), "dataset pass", "agreement",
// "warm-up", "timed forwards", "MACs", "peak memory", "size and parameters".
Result<Json> evaluate(const EvaluationInputs& inputs, const EvaluationOptions& options,
                      const EvaluationHooks& hooks = {});

}  // namespace profagent::agents

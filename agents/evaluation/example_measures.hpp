#pragma once
// What the evaluation measures on one example input of batch options.latency_batch_size: latency
// after a warm-up, multiply-accumulates of one sample on the traced path, and the peak memory of one
// forward.
#include <torch/script.h>

#include <vector>

#include "evaluation_hooks.hpp"
#include "evaluation_options.hpp"
#include "profagent/json.hpp"
#include "profagent/status.hpp"
#include "profagent/torch/model_io.hpp"

namespace profagent::agents {

// Adds latency_ms, macs, peak_memory_bytes and peak_memory_method to `metrics` (what options ask
// for and the model allows). Phases: "warm-up", "timed forwards", "MACs", "peak memory".
Status measure_on_example(torch::jit::Module& model, const std::vector<torch_tk::InputSpec>& specs,
                          const torch::Device& device, const EvaluationOptions& options,
                          const EvaluationHooks& hooks, spdlog::logger& log, Json& metrics);

}  // namespace profagent::agents

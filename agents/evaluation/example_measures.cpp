#include "example_measures.hpp"

#include <algorithm>

#include "profagent/log.hpp"
#include "profagent/profile/static_profile.hpp"

namespace profagent::agents {

using namespace torch_tk;

Status measure_on_example(torch::jit::Module& model, const std::vector<InputSpec>& specs,
                          const torch::Device& device, const EvaluationOptions& options,
                          const EvaluationHooks& hooks, spdlog::logger& log, Json& metrics) {
  std::vector<torch::Tensor> example = make_inputs(specs, options.latency_batch_size, options.seed, device);
  {
    // The first runs of a TorchScript method profile and specialize its graph: not a steady forward.
    auto warming = phase(hooks, "warm-up");
    const int warmup = options.measure_latency ? options.warmup : std::max(options.warmup, 2);
    for (int i = 0; i < warmup; ++i) {
      if (hooks.cancelled && hooks.cancelled()) return cancelled_status("evaluation", "during the latency warm-up");
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor ignored, run_forward(model, example, "model"));
      (void)ignored;
    }
  }
  if (options.measure_latency) {
    auto timing = phase(hooks, "timed forwards");
    PROFAGENT_ASSIGN_OR_RETURN(LatencyStats latency,
                               measure_latency(model, example, /*warmup=*/0, options.repeats, hooks.cancelled));
    latency.warmup = options.warmup;  // run above, in its own phase
    metrics["latency_ms"] = latency.to_json();
  }
  if (options.count_macs) {
    // MACs per sample (batch 1), counted on the traced path like the profiler's, so a pruned model
    // and its baseline compare. A model whose ops the counter cannot count keeps its other metrics.
    auto counting = phase(hooks, "MACs");
    std::vector<torch::jit::IValue> one_sample;
    for (torch::Tensor& input : make_inputs(specs, 1, options.seed, device)) one_sample.emplace_back(std::move(input));
    auto counted = static_profile(model, one_sample);
    if (counted)
      metrics["macs"] = counted->macs;
    else
      log.warn("MACs not counted: {}", counted.status().message());
  }
  if (hooks.cancelled && hooks.cancelled()) return cancelled_status("evaluation", "before measuring memory");
  auto measuring = phase(hooks, "peak memory");
  auto memory = measure_peak_memory(model, example);
  if (memory) {
    metrics["peak_memory_bytes"] = memory->bytes;
    metrics["peak_memory_method"] = memory->method;
  } else if (memory.status().code() == ErrorCode::kUnsupported) {
    log.warn("peak memory not measured: {}", memory.status().message());
  } else {
    return std::move(memory).take_status();
  }
  return Status::ok();
}

}  // namespace profagent::agents

#pragma once
// What the profiling stage computes, as plain library code: the static profile (parameters, MACs,
// activation bytes per layer), the dynamic profile (per-layer latency and memory, a Chrome trace of
// one forward), the roofline placement of every layer, and the bottleneck ranking, merged into the
// one `profile` document the analysis agent reads. The agent (profiler_agent.cpp) only adapts the
// blackboard to profile_model(); tests call it directly.
#include <torch/script.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "profagent/torch/model_io.hpp"
#include "profagent/config_schema.hpp"
#include "profagent/json.hpp"
#include "profagent/options.hpp"
#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN
class AgentContext;
PROFAGENT_ABI_NAMESPACE_END

namespace profagent::agents {

using torch_tk::InputSpec;

struct ProfileOptions {
  int warmup = 3;
  int repeats = 10;
  int threads = 0;                 // 0: LibTorch's current setting (recorded either way)
  std::int64_t batch_size = 1;     // the first dimension of every input
  std::optional<std::vector<std::int64_t>> input_shape;  // when no shape spec is connected
  std::string device = "cpu";
  bool trace = true;               // write the Chrome trace of one forward
  bool memory = true;              // per-layer and whole-model peak memory
  bool roofline = true;            // measure (or read the cached) roofline; intensity needs no roofline
  std::filesystem::path roofline_cache;  // empty: $XDG_CACHE_HOME/profagent/roofline.json
  int top_k = 10;                  // layers in the bottleneck ranking and the Markdown table
  std::uint64_t seed = 0;          // of the random inputs
};

// The profiler agent's config: schema, defaults and reading in one declaration.
const OptionsSchema<ProfileOptions>& profile_options_schema();

struct ProfileResult {
  Json profile;        // the profile document (see profile_model)
  Json chrome_trace;   // null when options.trace is off
  std::string markdown;  // the run report's section: the top-k layer table
};

// The inputs the profile runs on: torch_tk::resolve_input_specs's one fallback order (the shape spec's
// summary {"inputs": [{shape, dtype}]} when given, options.input_shape, the model's stored shapes),
// the batch dimension set to options.batch_size.
Result<std::vector<InputSpec>> profile_input_specs(const Json* shape_spec, const Json& model_metadata,
                                                   const ProfileOptions& options);

// Profiles `module`. The document: {model, input_shapes, device, threads, method, sum_ratio, gap_ms,
// total: {params, param_bytes, macs, flops, latency_ms (bare forward p50), latency_p90_ms,
// sum_of_layers_ms, peak_bytes, activation_bytes}, kinds: {...static per-kind totals},
// layers: [{name, kind, params, macs, latency_ms, latency_p90_ms, latency_share, activation_bytes,
// peak_bytes, live_peak_bytes, bytes_moved, intensity, bound, attained_fraction}], roofline: {...},
// bottlenecks: [{rank, name, kind, latency_ms, latency_share, bound, intensity, attained_fraction}],
// intensity_method, memory_method, environment, static: {seconds, attribution, unrecognized_ops},
// dynamic: {...forward statistics}}. Errors name `model_name`. With `phases`, records the phases
// "prepare", "static profile", "dynamic profile: warm-up" (then ": attribution forward", ": timed forwards", ": summary"), "roofline" and "document" on it.
Result<ProfileResult> profile_model(const torch::jit::Module& module, const std::vector<InputSpec>& specs,
                                    const ProfileOptions& options, const std::string& model_name,
                                    AgentContext* phases = nullptr);

// The stage itself, minus the plugin boundary: reads `model` (and the optional `shapes`) from the
// context, profiles, logs the top-k table, and publishes a ProfileArtifact on port `profile`.
Status run_profile_stage(AgentContext& context, const ProfileOptions& options);

// The Markdown section: a headline and the top-k layers by latency (name, kind, params, MACs,
// latency ms, share %, intensity, bound).
std::string profile_markdown(const Json& profile, int top_k);

}  // namespace profagent::agents

// The profiling stage: the static profile (parameters, MACs), the dynamic profile (per-layer latency
// and memory, a Chrome trace) and the roofline of the model on port `model`, published as a `profile`
// artifact on port `profile`. The work lives in profiler.cpp so that it is testable on its own.
#include <memory>

#include "profagent/profagent.hpp"
#include "profiler.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Status;
using profagent::agents::ProfileOptions;

class ProfilerAgent : public profagent::Agent {
 public:
  explicit ProfilerAgent(ProfileOptions options) : options_(std::move(options)) {}
  Status run(AgentContext& context) override { return profagent::agents::run_profile_stage(context, options_); }

 private:
  ProfileOptions options_;
};

AgentFactory make_profiler_factory() {
  AgentFactory factory;
  factory.id = "profiler";
  factory.role = "profiling";
  factory.summary =
      "Profiles a model: parameters and MACs per layer (static, exact), per-layer latency p50/p90 and share "
      "that add up to the measured forward, per-layer and whole-model peak memory, arithmetic intensity and "
      "compute/memory bound on this machine's roofline, the bottleneck ranking, and a Chrome trace.";
  factory.inputs = {
      {"model", profagent::kinds::kModel, "the model to profile"},
      {"shapes", profagent::kinds::kShapeSpec,
       "the input shapes ({inputs: [{shape, dtype}]}, e.g. shape_resolver.spec); default: input_shape", true},
  };
  factory.outputs = {{"profile", profagent::kinds::kProfile,
                      "total {params, macs, latency_ms, sum_of_layers_ms, peak_bytes, ...}; layers [{name, kind, "
                      "params, macs, latency_ms, latency_p90_ms, latency_share, activation_bytes, peak_bytes, "
                      "intensity, bound, ...}]; kinds; method, sum_ratio, gap_ms, threads; roofline; bottlenecks; "
                      "environment. Saved with trace.json (Chrome trace) and report.md (top-k table)"}};
  profagent::bind_agent_options<ProfilerAgent>(factory, profagent::agents::profile_options_schema());
  return factory;
}

void register_profiler(profagent::Registrar& registrar) { registrar.add_agent(make_profiler_factory()); }

}  // namespace

PROFAGENT_PLUGIN("profiler", "0.1.0", register_profiler);

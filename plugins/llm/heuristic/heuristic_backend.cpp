// The `heuristic` backend (interface "llm"): the embedded, offline, deterministic planner. It reads the
// request's structured evidence, never the prose, and answers with JSON text in the reply schema, so
// its answer is validated like any vendor's (heuristic_planner.hpp states the algorithm).
#include <chrono>
#include <memory>

#include "heuristic_planner.hpp"
#include "profagent/llm.hpp"
#include "profagent/options.hpp"
#include "profagent/plugin.hpp"

namespace {

using profagent::Json;
using profagent::LlmReply;
using profagent::LlmRequest;
using profagent::Result;

struct HeuristicOptions {};  // nothing to configure: the evidence and its constraints decide

class HeuristicBackend : public profagent::LlmBackend {
 public:
  explicit HeuristicBackend(HeuristicOptions) {}
  std::string backend_id() const override { return "heuristic"; }
  std::string model_name() const override { return "profagent-heuristic-1"; }

  Result<LlmReply> complete(const LlmRequest& request) override {
    const auto start = std::chrono::steady_clock::now();
    PROFAGENT_ASSIGN_OR_RETURN(Json plan, profagent::heuristic::plan_from_evidence(request.evidence));
    LlmReply reply;
    reply.text = plan.dump(2);
    reply.finish_reason = "stop";
    reply.raw_finish_reason = "stop";
    reply.model = model_name();
    reply.milliseconds =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return reply;
  }
};

const profagent::OptionsSchema<HeuristicOptions>& heuristic_options_schema() {
  static const profagent::OptionsSchema<HeuristicOptions> schema;
  return schema;
}

void register_llm_heuristic(profagent::Registrar& registrar) {
  profagent::ProviderFactory factory;
  factory.id = "heuristic";
  factory.interface = profagent::kLlmInterface;
  factory.summary =
      "The embedded planner: offline and deterministic; allocates per-group pruning ratios from MACs, "
      "latency "
      "share, roofline bound and measured sensitivity to meet the budget (docs/analysis.md)";
  profagent::bind_provider_options<HeuristicBackend, HeuristicOptions>(factory, heuristic_options_schema());
  registrar.add_provider(std::move(factory));
}

}  // namespace

PROFAGENT_PLUGIN("llm_heuristic", "0.1.0", register_llm_heuristic);

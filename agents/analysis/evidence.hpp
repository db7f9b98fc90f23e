#pragma once
// The facts a planner reasons over (docs/analysis.md, "Evidence"): the prunable groups of this model
// from the pruning engine's dependency graph (name, members, units, params), joined with the profile
// artifact's per-layer MACs, latency share, intensity and roofline bound (a group's layers are the
// modules of its members), the totals, the constraints, the quantizable layers (task quantize/both),
// the measured sensitivity (sensitivity.hpp) and, in a loop, the earlier iterations. Layer names come
// from a model file: they are JSON values here, length-capped, and never spliced into instructions.
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"
#include "reply_validation.hpp"

namespace profagent::torch_tk {
class DependencyGraph;
}

namespace profagent::agents {

inline constexpr std::size_t kMaxEvidenceNameChars = 200;  // a longer layer name is not offered

struct EvidenceRequest {
  std::string task = "prune";
  std::string model_name;
  std::optional<double> macs_reduction, latency_reduction, max_accuracy_drop;
  double max_ratio = 0.5;
  std::vector<std::string> ignored_layers;
  bool ignore_input_layer = true;
  Json profile;   // the profile artifact's summary (agents/profiler): total, layers[]
  Json history;   // the loop's history (null outside a loop)
  Json baseline;  // metrics (null: none)
};

struct Evidence {
  Json json;                       // what LlmRequest::evidence carries and the user message shows
  ReplyRules rules;                // what a reply may name
  std::vector<std::string> notes;  // groups left out (names too long), layers the profile lacks
};

Result<Evidence> build_evidence(const torch_tk::DependencyGraph& graph, const EvidenceRequest& request);

// Adds groups[].sensitivity from `by_group` (group name → {probe_ratio, loss_increase, accuracy_drop}).
void attach_sensitivity(Evidence& evidence, const Json& by_group);

}  // namespace profagent::agents

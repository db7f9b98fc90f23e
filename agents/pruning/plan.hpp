#pragma once
// The pruning part of a `plan` artifact (kind "plan", what the analysis agent produces) and the check
// of its layer names against a model's dependency graph. No LibTorch beyond the graph's header.
//
// Format (docs/workflows.md, "The pruning plan"):
//   {"pruning": {"global_ratio": 0.2,                                  optional
//                "layers": {"layer1.0.conv1": 0.3,                     layer (module path) → ratio
//                           "layer2.0.conv1": {"ratio": 0.5, "reason": "..."}},
//                "ignored_layers": ["fc"]},                            optional
//    ...other sections (quantization, reasons) are not read here}
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {
class DependencyGraph;
}

namespace profagent::agents {

struct PruningPlan {
  std::map<std::string, double> layers;  // group name (module path) or group key → share of units to remove
  std::optional<double> global_ratio;    // every group the plan does not name; unset: the stage's `ratio`
  std::vector<std::string> ignored_layers;
  Json to_json() const;
};

// The plan's "pruning" section, or nullopt when the plan has none (e.g. a quantization-only plan).
// Errors (kValidation) name the offending entry: a ratio outside [0, 1), a layer that is neither a
// number nor {ratio: number}, a section that is not a map.
Result<std::optional<PruningPlan>> parse_pruning_plan(const Json& plan);

// Every plan layer must name a prunable group (its module path or key). A name that is a module of
// the model but in no prunable group is left to the pruner, whose error says why it is frozen. A name
// that is no module at all is an error (kNotFound) naming the layer and `model_name`, with the closest
// group names as suggestions. `module_paths`: every module path of the model.
Status check_plan_layers(const PruningPlan& plan, const torch_tk::DependencyGraph& graph,
                         const std::vector<std::string>& module_paths, const std::string& model_name);

}  // namespace profagent::agents

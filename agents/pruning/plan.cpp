#include "plan.hpp"

#include <algorithm>

#include "profagent/text.hpp"
#include "profagent/prune/prune_graph.hpp"

namespace profagent::agents {

namespace {

Status invalid(const std::string& message) { return Status(ErrorCode::kValidation, "plan: " + message); }

Result<double> ratio_from(const Json& value, const std::string& where) {
  const Json* number = &value;
  if (value.is_object()) {
    if (!value.contains("ratio")) return invalid(where + " has no 'ratio'");
    number = &value["ratio"];
  }
  if (!number->is_number()) return invalid(where + " must be a number or {ratio: number}, got " + value.dump());
  const double ratio = number->get<double>();
  // 1.0 would remove every unit of a group, which no model survives.
  if (!(ratio >= 0.0 && ratio < 1.0)) return invalid(where + " is " + number->dump() + ", not in [0, 1)");
  return ratio;
}

}  // namespace

Json PruningPlan::to_json() const {
  Json json{{"layers", layers}, {"ignored_layers", ignored_layers}};
  if (global_ratio) json["global_ratio"] = *global_ratio;
  return json;
}

Result<std::optional<PruningPlan>> parse_pruning_plan(const Json& plan) {
  if (!plan.is_object()) return invalid("expected a JSON object, got " + plan.dump());
  if (!plan.contains("pruning") || plan["pruning"].is_null()) return std::optional<PruningPlan>();
  const Json& section = plan["pruning"];
  if (!section.is_object()) return invalid("'pruning' must be a map, got " + section.dump());
  static const std::vector<std::string> kKnown = {"layers", "global_ratio", "ignored_layers", "reason"};
  for (auto it = section.begin(); it != section.end(); ++it) {
    if (std::find(kKnown.begin(), kKnown.end(), it.key()) != kKnown.end()) continue;
    std::string message = "unknown key 'pruning." + it.key() + "' (known: " + join(kKnown) + ")";
    auto close = close_matches(it.key(), kKnown, 1);
    if (!close.empty()) message += "; did you mean '" + close.front() + "'?";
    return invalid(message);
  }
  PruningPlan out;
  if (section.contains("global_ratio") && !section["global_ratio"].is_null()) {
    PROFAGENT_ASSIGN_OR_RETURN(out.global_ratio, ratio_from(section["global_ratio"], "pruning.global_ratio"));
  }
  if (section.contains("layers") && !section["layers"].is_null()) {
    const Json& layers = section["layers"];
    if (!layers.is_object()) return invalid("'pruning.layers' must map layer names to ratios, got " + layers.dump());
    for (auto it = layers.begin(); it != layers.end(); ++it) {
      PROFAGENT_ASSIGN_OR_RETURN(double ratio, ratio_from(it.value(), "pruning.layers['" + it.key() + "']"));
      out.layers[it.key()] = ratio;
    }
  }
  if (section.contains("ignored_layers") && !section["ignored_layers"].is_null()) {
    const Json& ignored = section["ignored_layers"];
    if (!ignored.is_array()) return invalid("'pruning.ignored_layers' must be a list of layer names");
    for (const Json& name : ignored) {
      if (!name.is_string()) return invalid("'pruning.ignored_layers' holds " + name.dump() + ", not a name");
      out.ignored_layers.push_back(name.get<std::string>());
    }
  }
  return std::optional<PruningPlan>(std::move(out));
}

Status check_plan_layers(const PruningPlan& plan, const torch_tk::DependencyGraph& graph,
                         const std::vector<std::string>& module_paths, const std::string& model_name) {
  std::vector<std::string> group_names;
  for (const auto& group : graph.groups()) group_names.push_back(group.name);
  for (const auto& [layer, ratio] : plan.layers) {
    (void)ratio;
    if (graph.find_group(layer) != nullptr) continue;
    // A real module that is frozen: the pruner's own error explains why, keep it.
    if (std::find(module_paths.begin(), module_paths.end(), layer) != module_paths.end()) continue;
    std::string message = "the plan prunes layer '" + layer + "', which matches no layer of " + model_name;
    auto close = close_matches(layer, group_names);
    if (close.empty()) close = close_matches(layer, module_paths);
    if (!close.empty()) {
      std::vector<std::string> quoted;
      for (const auto& name : close) quoted.push_back("'" + name + "'");
      message += "; did you mean " + join(quoted, " or ") + "?";
    } else {
      message += " (" + std::to_string(group_names.size()) + " prunable groups, e.g. '" +
                 (group_names.empty() ? std::string("none") : group_names.front()) + "')";
    }
    return Status(ErrorCode::kNotFound, message);
  }
  return Status::ok();
}

}  // namespace profagent::agents

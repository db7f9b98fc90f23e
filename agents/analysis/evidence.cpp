// The planner's evidence from the dependency graph and the profile (evidence.hpp).
#include "evidence.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "profagent/prune/prune_graph.hpp"
#include "reply_schema.hpp"

namespace profagent::agents {

namespace {

std::string module_of(const std::string& param) {
  const auto dot = param.rfind('.');
  return dot == std::string::npos ? std::string() : param.substr(0, dot);
}

double number_at(const Json& object, const char* key) {
  return object.is_object() && object.contains(key) && object[key].is_number() ? object[key].get<double>()
                                                                               : 0.0;
}

bool listed_group(const std::vector<std::string>& ignored, const torch_tk::PruneGroup& group) {
  return std::find(ignored.begin(), ignored.end(), group.name) != ignored.end() ||
         std::find(ignored.begin(), ignored.end(), group.key) != ignored.end();
}

Json optional_number(const std::optional<double>& value) {
  return value ? Json(*value) : Json();
}

// The loop's history, newest iterations kept when it is long (a prompt has a size).
Json capped_history(const Json& history) {
  constexpr std::size_t kMaxChars = 20000;
  if (history.is_null()) return history;
  Json copy = history;
  if (copy.is_object() && copy.contains("iterations") && copy["iterations"].is_array()) {
    Json& iterations = copy["iterations"];
    while (iterations.size() > 1 && copy.dump().size() > kMaxChars) iterations.erase(iterations.begin());
  }
  if (copy.dump().size() > kMaxChars)
    return Json{{"omitted", "the history is larger than the prompt allows"}};
  return copy;
}

}  // namespace

Result<Evidence> build_evidence(const torch_tk::DependencyGraph& graph, const EvidenceRequest& request) {
  Evidence out;
  const Json& profile = request.profile;
  if (!profile.is_object() || !profile.contains("layers") || !profile["layers"].is_array())
    return Status(ErrorCode::kValidation,
                  "the profile has no 'layers' list (connect a profiler stage's profile)");
  const Json total = profile.contains("total") ? profile["total"] : Json::object();
  const double total_macs = std::max(1.0, number_at(total, "macs"));
  const double total_params = std::max(1.0, number_at(total, "params"));
  std::map<std::string, const Json*> layers;
  for (const Json& layer : profile["layers"])
    if (layer.contains("name") && layer["name"].is_string())
      layers[layer["name"].get<std::string>()] = &layer;

  std::map<std::string, std::int64_t> numel;  // param → elements
  std::map<std::string, std::vector<std::int64_t>> shapes;
  for (const auto& parameter : graph.module().named_parameters(/*recurse=*/true)) {
    numel[parameter.name] = parameter.value.numel();
    shapes[parameter.name] = parameter.value.sizes().vec();
  }

  Json groups = Json::array();
  std::set<std::string> missing_layers;
  for (const torch_tk::PruneGroup& group : graph.groups()) {
    const bool ignored = listed_group(request.ignored_layers, group) ||
                         (request.ignore_input_layer && group.reads_graph_input);
    if (ignored) {
      out.rules.ignored_groups.push_back(group.name);
      continue;
    }
    if (group.name.size() > kMaxEvidenceNameChars) {
      out.notes.push_back("a group whose name has " + std::to_string(group.name.size()) +
                          " characters is not offered");
      continue;
    }
    std::set<std::string> modules, mac_modules, kinds;
    double params = 0.0;
    int producers = 0;
    for (const auto& member : group.members) {
      if (member.role == "buffer") continue;
      const std::string module = module_of(member.param);
      modules.insert(module);
      if (member.role == "producer" || member.role == "consumer") mac_modules.insert(module);
      if (member.role == "producer") ++producers;
      if (!member.module_kind.empty()) kinds.insert(member.module_kind);
      auto shape = shapes.find(member.param);
      if (shape != shapes.end() && member.dim >= 0 &&
          member.dim < static_cast<std::int64_t>(shape->second.size())) {
        const double per_index =
            static_cast<double>(numel[member.param]) /
            std::max<std::int64_t>(1, shape->second[static_cast<std::size_t>(member.dim)]);
        std::size_t indices = 0;
        for (const auto& unit : member.unit_indices) indices += unit.size();
        params += per_index * static_cast<double>(indices);
      }
    }
    double macs = 0.0, latency_ms = 0.0, latency_share = 0.0, heaviest = -1.0, intensity = 0.0;
    std::string bound = "unknown";
    Json member_names = Json::array();
    for (const auto& module : modules) {
      if (member_names.size() < 16 && module.size() <= kMaxEvidenceNameChars) member_names.push_back(module);
      auto layer = layers.find(module);
      if (layer == layers.end()) {
        missing_layers.insert(module);
        continue;
      }
      const Json& row = *layer->second;
      if (mac_modules.count(module)) macs += number_at(row, "macs");
      latency_ms += number_at(row, "latency_ms");
      latency_share += number_at(row, "latency_share");
      if (number_at(row, "latency_ms") > heaviest) {
        heaviest = number_at(row, "latency_ms");
        bound = row.value("bound", std::string("unknown"));
        intensity = number_at(row, "intensity");
      }
    }
    groups.push_back(Json{{"layer", group.name},
                          {"units", group.units},
                          {"producers", producers},
                          {"members", std::move(member_names)},
                          {"member_count", modules.size()},
                          {"kinds", std::vector<std::string>(kinds.begin(), kinds.end())},
                          {"params", static_cast<std::int64_t>(params)},
                          {"macs", static_cast<std::int64_t>(macs)},
                          {"macs_share", macs / total_macs},
                          {"latency_ms", latency_ms},
                          {"latency_share", latency_share},
                          {"intensity", intensity},
                          {"bound", bound},
                          {"sensitivity", nullptr}});
    out.rules.groups.push_back(group.name);
  }
  for (const auto& module : missing_layers)
    if (module.size() <= kMaxEvidenceNameChars)
      out.notes.push_back("the profile has no layer '" + module + "'");

  Json quantizable = Json::array();
  if (request.task != "prune") {
    // Execution order: the first layer with MACs reads the input, the last one makes the output.
    std::vector<const Json*> weighted;
    for (const Json& layer : profile["layers"]) {
      const std::string kind = layer.value("kind", std::string());
      if (number_at(layer, "params") > 0 && (kind == "conv" || kind == "linear") && layer.contains("name") &&
          layer["name"].get<std::string>().size() <= kMaxEvidenceNameChars)
        weighted.push_back(&layer);
    }
    for (std::size_t i = 0; i < weighted.size(); ++i) {
      const Json& layer = *weighted[i];
      quantizable.push_back(Json{{"name", layer["name"]},
                                 {"kind", layer["kind"]},
                                 {"params", layer["params"]},
                                 {"params_share", number_at(layer, "params") / total_params},
                                 {"macs", layer["macs"]},
                                 {"latency_share", number_at(layer, "latency_share")},
                                 {"bound", layer.value("bound", std::string("unknown"))},
                                 {"reads_input", i == 0},
                                 {"is_output", i + 1 == weighted.size()}});
      out.rules.quantizable.push_back(layer["name"].get<std::string>());
    }
  }
  out.rules.task = request.task;
  out.rules.max_ratio = request.max_ratio;
  out.rules.ignored_layers = request.ignored_layers;

  std::string model_name = request.model_name.substr(0, kMaxEvidenceNameChars);
  out.json =
      Json{{"format", "profagent.analysis_evidence/1"},
           {"task", request.task},
           {"model",
            {{"name", model_name},
             {"params", total.value("params", Json(0))},
             {"macs", total.value("macs", Json(0))},
             {"latency_ms", total.value("latency_ms", Json(0.0))},
             {"threads",
              profile.contains("environment") ? profile["environment"].value("threads", Json()) : Json()}}},
           {"constraints",
            {{"macs_reduction", optional_number(request.macs_reduction)},
             {"latency_reduction", optional_number(request.latency_reduction)},
             {"max_accuracy_drop", optional_number(request.max_accuracy_drop)},
             {"max_ratio", request.max_ratio},
             {"ignored_groups", out.rules.ignored_groups},
             {"schemes", quantization_schemes()}}},
           {"groups", std::move(groups)},
           {"layers", std::move(quantizable)},
           {"history", capped_history(request.history)},
           {"baseline", request.baseline}};
  return out;
}

void attach_sensitivity(Evidence& evidence, const Json& by_group) {
  for (Json& group : evidence.json["groups"]) {
    const std::string name = group["layer"].get<std::string>();
    if (by_group.contains(name)) group["sensitivity"] = by_group[name];
  }
}

}  // namespace profagent::agents

// The plan's quantization section (plan_quantization.hpp).
#include "profagent/quantize/plan_quantization.hpp"

#include <algorithm>

#include "profagent/text.hpp"

namespace profagent::quantize {

namespace {

Status plan_invalid(const std::string& message) { return Status(ErrorCode::kValidation, "plan: " + message); }

Status plan_unknown_layer(const std::string& layer, const std::vector<std::string>& layers, const std::string& model) {
  std::string message = "the plan quantizes layer '" + layer + "', which is no quantizable layer of " + model;
  auto close = close_matches(layer, layers);
  if (!close.empty()) {
    std::vector<std::string> quoted;
    for (const auto& name : close) quoted.push_back("'" + name + "'");
    message += "; did you mean " + join(quoted, " or ") + "?";
  } else {
    message += " (" + std::to_string(layers.size()) + " quantizable layers, e.g. '" +
               (layers.empty() ? std::string("none") : layers.front()) + "')";
  }
  return Status(ErrorCode::kNotFound, message);
}

}  // namespace

Json QuantizationPlan::to_json() const {
  Json named = Json::object();
  for (const auto& [layer, scheme] : layers) {
    auto reason = reasons.find(layer);
    named[layer] = reason == reasons.end() ? Json(scheme_name(scheme))
                                           : Json{{"scheme", scheme_name(scheme)}, {"reason", reason->second}};
  }
  Json json{{"layers", named}, {"ignored_layers", ignored_layers}};
  if (default_scheme) json["default"] = scheme_name(*default_scheme);
  return json;
}

Result<std::optional<QuantizationPlan>> parse_quantization_plan(const Json& plan) {
  if (!plan.is_object()) return plan_invalid("expected a JSON object, got " + plan.dump());
  if (!plan.contains("quantization") || plan["quantization"].is_null()) return std::optional<QuantizationPlan>();
  const Json& section = plan["quantization"];
  if (!section.is_object()) return plan_invalid("'quantization' must be a map, got " + section.dump());
  static const std::vector<std::string> kKnown = {"default", "layers", "ignored_layers", "reason"};
  for (auto it = section.begin(); it != section.end(); ++it) {
    if (std::find(kKnown.begin(), kKnown.end(), it.key()) != kKnown.end()) continue;
    std::string message = "unknown key 'quantization." + it.key() + "' (known: " + join(kKnown) + ")";
    auto close = close_matches(it.key(), kKnown, 1);
    if (!close.empty()) message += "; did you mean '" + close.front() + "'?";
    return plan_invalid(message);
  }
  QuantizationPlan out;
  if (section.contains("default") && !section["default"].is_null()) {
    if (!section["default"].is_string()) return plan_invalid("'quantization.default' must be a scheme name");
    PROFAGENT_ASSIGN_OR_RETURN(out.default_scheme,
                               parse_scheme(section["default"].get<std::string>(), "plan: quantization.default"));
  }
  if (section.contains("layers") && !section["layers"].is_null()) {
    const Json& layers = section["layers"];
    if (!layers.is_object()) return plan_invalid("'quantization.layers' must map layer names to schemes");
    for (auto it = layers.begin(); it != layers.end(); ++it) {
      const std::string where = "plan: quantization.layers['" + it.key() + "']";
      const Json* name = &it.value();
      if (it.value().is_object()) {
        if (!it.value().contains("scheme")) return Status(ErrorCode::kValidation, where + " has no 'scheme'");
        name = &it.value()["scheme"];
        if (it.value().contains("reason") && it.value()["reason"].is_string())
          out.reasons[it.key()] = it.value()["reason"].get<std::string>();
      }
      if (!name->is_string())
        return Status(ErrorCode::kValidation,
                      where + " must be a scheme name or {scheme, reason}, got " + it.value().dump());
      PROFAGENT_ASSIGN_OR_RETURN(out.layers[it.key()], parse_scheme(name->get<std::string>(), where));
    }
  }
  if (section.contains("ignored_layers") && !section["ignored_layers"].is_null()) {
    const Json& ignored = section["ignored_layers"];
    if (!ignored.is_array()) return plan_invalid("'quantization.ignored_layers' must be a list of layer names");
    for (const Json& name : ignored) {
      if (!name.is_string()) return plan_invalid("'quantization.ignored_layers' holds " + name.dump() + ", not a name");
      out.ignored_layers.push_back(name.get<std::string>());
    }
  }
  return std::optional<QuantizationPlan>(std::move(out));
}

Result<std::map<std::string, Scheme>> resolve_layer_schemes(const QuantizationPlan& plan,
                                                            const std::vector<std::string>& layers,
                                                            Scheme fallback, const std::string& model_name) {
  auto known = [&layers](const std::string& name) {
    return std::find(layers.begin(), layers.end(), name) != layers.end();
  };
  for (const auto& [layer, scheme] : plan.layers) {
    (void)scheme;
    if (!known(layer)) return plan_unknown_layer(layer, layers, model_name);
  }
  for (const auto& layer : plan.ignored_layers)
    if (!known(layer)) return plan_unknown_layer(layer, layers, model_name);
  std::map<std::string, Scheme> out;
  const Scheme by_default = plan.default_scheme.value_or(fallback);
  for (const auto& layer : layers) {
    auto named = plan.layers.find(layer);
    Scheme scheme = named != plan.layers.end() ? named->second : by_default;
    if (std::find(plan.ignored_layers.begin(), plan.ignored_layers.end(), layer) != plan.ignored_layers.end())
      scheme = Scheme::kNone;
    out[layer] = scheme;
  }
  return out;
}

}  // namespace profagent::quantize

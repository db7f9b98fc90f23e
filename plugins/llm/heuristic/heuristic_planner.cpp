// The embedded planner's allocation (the algorithm is stated in heuristic_planner.hpp).
#include "heuristic_planner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace profagent::heuristic {

namespace {

Status bad_evidence(const std::string& message) {
  return Status(ErrorCode::kValidation, "heuristic planner: evidence " + message);
}

double number_or(const Json& object, const char* key, double fallback) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number()) return fallback;
  return object[key].get<double>();
}

std::string fixed(double value, int digits = 3) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

struct Candidate {
  std::string layer;
  double benefit = 0.0;
  double damage = 1.0;     // s_g
  double macs_cost = 0.0;  // first-order MAC share removed per unit of ratio
  double latency_cost = 0.0;
  bool measured = false;
  double ratio = 0.0;
};

double bound_factor(const Json& group) {
  const std::string bound = group.value("bound", std::string("unknown"));
  return bound == "memory" ? 0.5 : 1.0;
}

// The smallest λ whose ratios meet `target` by `cost` (the estimate grows with λ until every ratio is
// capped). Returns the capped allocation when the target is out of reach.
double solve_lambda(const std::vector<Candidate>& candidates, double max_ratio, double target,
                    double Candidate::*cost) {
  auto reached = [&](double lambda) {
    double sum = 0.0;
    for (const Candidate& c : candidates)
      sum += std::min(max_ratio, lambda * c.benefit / c.damage) * (c.*cost);
    return sum;
  };
  double hi = 1.0;
  for (int i = 0; i < 200 && reached(hi) < target; ++i) hi *= 2.0;
  double lo = 0.0;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    (reached(mid) >= target ? hi : lo) = mid;
  }
  return hi;
}

Result<Json> pruning_entries(const Json& evidence, std::string& summary) {
  const Json& constraints = evidence.contains("constraints") ? evidence["constraints"] : Json::object();
  const double max_ratio = number_or(constraints, "max_ratio", 0.5);
  const bool has_macs = constraints.contains("macs_reduction") && constraints["macs_reduction"].is_number();
  const bool has_latency =
      constraints.contains("latency_reduction") && constraints["latency_reduction"].is_number();
  const double macs_target =
      has_macs || !has_latency ? number_or(constraints, "macs_reduction", kDefaultMacsReduction) : 0.0;
  const double latency_target = number_or(constraints, "latency_reduction", 0.0);
  const double w = has_latency && !has_macs ? 0.3 : 0.7;

  if (!evidence.contains("groups") || !evidence["groups"].is_array())
    return bad_evidence("has no 'groups' list");
  std::vector<Candidate> candidates;
  std::vector<double> measured_losses;
  for (const Json& group : evidence["groups"]) {
    if (!group.is_object() || !group.contains("layer") || !group["layer"].is_string())
      return bad_evidence("holds a group without a 'layer' name");
    Candidate c;
    c.layer = group["layer"].get<std::string>();
    c.macs_cost = std::max(0.0, number_or(group, "macs_share", 0.0));
    c.latency_cost = std::max(0.0, number_or(group, "latency_share", 0.0));
    c.benefit = w * c.macs_cost + (1.0 - w) * c.latency_cost * bound_factor(group);
    const Json sensitivity = group.contains("sensitivity") ? group["sensitivity"] : Json();
    if (sensitivity.is_object() && sensitivity.contains("loss_increase")) {
      const double probe = std::max(1e-3, number_or(sensitivity, "probe_ratio", 0.5));
      c.damage = std::max(0.0, number_or(sensitivity, "loss_increase", 0.0)) / (probe * probe);
      c.measured = true;
      measured_losses.push_back(c.damage);
    } else {
      const double units = std::max(1.0, number_or(group, "units", 64.0));
      const double producers = std::max(1.0, number_or(group, "producers", 1.0));
      c.damage = producers * std::sqrt(64.0 / units);
    }
    candidates.push_back(std::move(c));
  }
  // A group measured as harmless is still not free: the floor keeps λ·b/s finite and the ranking
  // among the cheapest groups by their benefit.
  if (!measured_losses.empty()) {
    std::vector<double> sorted = measured_losses;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    const double floor = std::max(1e-6, 0.02 * median);
    for (Candidate& c : candidates)
      if (c.measured) c.damage = std::max(c.damage, floor);
  }
  for (Candidate& c : candidates) c.damage = std::max(c.damage, 1e-9);

  double lambda = 0.0;
  if (macs_target > 0.0) lambda = solve_lambda(candidates, max_ratio, macs_target, &Candidate::macs_cost);
  if (latency_target > 0.0)
    lambda = std::max(lambda, solve_lambda(candidates, max_ratio, latency_target, &Candidate::latency_cost));

  Json entries = Json::array();
  double estimated_macs = 0.0, estimated_latency = 0.0;
  int pruned = 0;
  for (Candidate& c : candidates) {
    double ratio = c.benefit > 0.0 ? std::min(max_ratio, lambda * c.benefit / c.damage) : 0.0;
    ratio = std::round(ratio * 1000.0) / 1000.0;
    if (ratio < 0.01) ratio = 0.0;
    c.ratio = ratio;
    estimated_macs += ratio * c.macs_cost;
    estimated_latency += ratio * c.latency_cost;
    if (ratio > 0.0) ++pruned;
    std::string reason = "benefit " + fixed(c.benefit, 4) + " (MACs " + fixed(100.0 * c.macs_cost, 1) +
                         "%, latency " + fixed(100.0 * c.latency_cost, 1) + "%), " +
                         (c.measured ? "measured sensitivity " : "proxy sensitivity ") + fixed(c.damage, 4);
    if (ratio >= max_ratio) reason += "; at the cap";
    if (ratio == 0.0) reason += "; kept: too costly for its benefit";
    entries.push_back(Json{
        {"layer", c.layer}, {"action", "prune"}, {"ratio", ratio}, {"scheme", nullptr}, {"reason", reason}});
  }
  summary += "Pruned " + std::to_string(pruned) + " of " + std::to_string(candidates.size()) +
             " groups by benefit over " + (measured_losses.empty() ? "proxy" : "measured") +
             " sensitivity; first-order estimate: " + fixed(100.0 * estimated_macs, 1) + "% of the MACs, " +
             fixed(100.0 * estimated_latency, 1) + "% of the latency.";
  return entries;
}

bool allowed(const Json& constraints, const std::string& scheme) {
  if (!constraints.contains("schemes") || !constraints["schemes"].is_array()) return true;
  for (const Json& s : constraints["schemes"])
    if (s.is_string() && s.get<std::string>() == scheme) return true;
  return false;
}

Result<Json> quantization_entries(const Json& evidence, std::string& summary) {
  const Json& constraints = evidence.contains("constraints") ? evidence["constraints"] : Json::object();
  if (!evidence.contains("layers") || !evidence["layers"].is_array())
    return bad_evidence("has no 'layers' list");
  Json entries = Json::array();
  int quantized = 0;
  for (const Json& layer : evidence["layers"]) {
    if (!layer.is_object() || !layer.contains("name") || !layer["name"].is_string())
      return bad_evidence("holds a layer without a 'name'");
    const std::string kind = layer.value("kind", std::string());
    const double params = number_or(layer, "params_share", 0.0);
    const double latency = number_or(layer, "latency_share", 0.0);
    std::string scheme = "none";
    std::string reason;
    if (layer.value("reads_input", false) || layer.value("is_output", false)) {
      reason = "the input or output layer: the most sensitive to rounding";
    } else if (kind == "linear" && params >= 0.01) {
      scheme = "int8_dynamic";
      reason = "linear with " + fixed(100.0 * params, 1) +
               "% of the parameters: int8 weights, activations at run time";
    } else if (kind == "conv" && latency >= 0.02) {
      scheme = "int8_static";
      reason =
          "conv with " + fixed(100.0 * latency, 1) + "% of the latency: int8 with calibrated activations";
    } else {
      reason = "too small a share (" + fixed(100.0 * params, 1) + "% params, " + fixed(100.0 * latency, 1) +
               "% latency) to pay for the rounding";
    }
    if (scheme != "none" && !allowed(constraints, scheme)) {
      reason = scheme + " is not allowed here; kept in float";
      scheme = "none";
    }
    if (scheme == "none" && !allowed(constraints, "none")) continue;
    if (scheme != "none") ++quantized;
    entries.push_back(Json{{"layer", layer["name"]},
                           {"action", "quantize"},
                           {"ratio", nullptr},
                           {"scheme", scheme},
                           {"reason", reason}});
  }
  if (!summary.empty()) summary += " ";
  summary +=
      "Quantized " + std::to_string(quantized) + " layers (linear: int8_dynamic, heavy convs: int8_static).";
  return entries;
}

}  // namespace

Result<Json> plan_from_evidence(const Json& evidence) {
  if (!evidence.is_object()) return bad_evidence("is not a JSON object");
  const std::string task = evidence.value("task", std::string("prune"));
  if (task != "prune" && task != "quantize" && task != "both")
    return bad_evidence("has an unknown task '" + task + "'");
  Json layers = Json::array();
  std::string summary;
  if (task != "quantize") {
    PROFAGENT_ASSIGN_OR_RETURN(Json entries, pruning_entries(evidence, summary));
    for (Json& entry : entries) layers.push_back(std::move(entry));
  }
  if (task != "prune") {
    PROFAGENT_ASSIGN_OR_RETURN(Json entries, quantization_entries(evidence, summary));
    for (Json& entry : entries) layers.push_back(std::move(entry));
  }
  return Json{{"layers", std::move(layers)}, {"summary", summary}};
}

}  // namespace profagent::heuristic

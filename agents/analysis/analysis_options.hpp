#pragma once
// The analysis agent's config (profagent-run --describe analysis): one declaration for schema,
// defaults and reading.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/options.hpp"

namespace profagent::agents {

struct AnalysisOptions {
  std::string llm = "heuristic";     // a backend id or a name from the workflow's llm:/resources:
  Json llm_config = Json::object();  // the backend's own config, on top of a named entry's
  std::string task = "prune";        // prune | quantize | both
  std::optional<double> macs_reduction;
  std::optional<double> latency_reduction;
  std::optional<double> max_accuracy_drop;
  double max_ratio = 0.5;
  std::vector<std::string> ignored_layers;
  bool ignore_input_layer = true;
  std::int64_t max_reasks = 2;
  std::int64_t token_budget = 200000;
  std::int64_t max_tokens = 4096;
  Json calibration = Json();  // dataset block; null or {}: no measured sensitivity
  std::int64_t calibration_samples = 512;
  std::int64_t calibration_batch_size = 128;
  double sensitivity_probe = 0.5;
  std::uint64_t seed = 0;
  std::optional<std::string> system_prompt;  // a template file replacing the embedded one
  std::optional<std::string> user_prompt;
};

const OptionsSchema<AnalysisOptions>& analysis_options_schema();

}  // namespace profagent::agents

// The analysis agent's config schema (analysis_options.hpp).
#include "analysis_options.hpp"

#include "profagent/llm.hpp"
#include "profagent/torch/dataset.hpp"

namespace profagent::agents {

const OptionsSchema<AnalysisOptions>& analysis_options_schema() {
  static const OptionsSchema<AnalysisOptions> schema = [] {
    using O = AnalysisOptions;
    OptionsSchema<O> s;
    s.field("llm", &O::llm)
        .names_provider(kLlmInterface)
        .describe(
            "the planner: an llm backend id (heuristic, openai, ...) or the name of an entry of the "
            "workflow's llm: section. Its reply must follow the JSON Schema in docs/analysis.md (also "
            "written to the stage's work/reply_schema.json each run)");
    s.field("llm_config", &O::llm_config)
        .configures_provider("llm")
        .describe(
            "the backend's own config (e.g. {model: gpt-4o}), on top of the llm: entry's when `llm` names "
            "one");
    s.field("task", &O::task, ConfigType::kEnum)
        .choices({"prune", "quantize", "both"})
        .describe("what the plan decides: pruning ratios, quantization schemes, or both");
    s.field("macs_reduction", &O::macs_reduction)
        .min(0.0)
        .max(0.95)
        .describe("budget: share of the MACs to remove");
    s.field("latency_reduction", &O::latency_reduction)
        .min(0.0)
        .max(0.95)
        .describe("budget: share of the latency to remove (with neither budget: 0.2 of the MACs)");
    s.field("max_accuracy_drop", &O::max_accuracy_drop)
        .min(0.0)
        .max(1.0)
        .describe("budget: accuracy the plan may cost (given to the planner as a constraint)");
    s.field("max_ratio", &O::max_ratio)
        .min(0.0)
        .max(0.95)
        .describe(
            "safety cap on any group's ratio; a reply above it is clamped (recorded in planner.warnings)");
    s.field("ignored_layers", &O::ignored_layers)
        .describe("layers (module paths) or group keys never planned");
    s.field("ignore_input_layer", &O::ignore_input_layer)
        .describe(
            "leave the group reading the model input (stem conv, patch embedding) alone, as pruning does");
    s.field("max_reasks", &O::max_reasks)
        .min(0)
        .max(10)
        .describe("re-asks quoting the errors of a refused reply");
    s.field("token_budget", &O::token_budget)
        .min(0)
        .describe("tokens in + out over all calls before falling back to the embedded planner; 0: no limit");
    s.field("max_tokens", &O::max_tokens).min(1).describe("the most tokens one reply may have");
    s.field("calibration", &O::calibration)
        .names_provider(torch_tk::kDatasetInterface)
        .describe(
            "data for the measured one-shot sensitivity of each group ({format: idx, ...} like the "
            "evaluation's dataset); an empty map means none");
    s.field("calibration_samples", &O::calibration_samples)
        .min(1)
        .describe("fixed-seed samples of the calibration set");
    s.field("calibration_batch_size", &O::calibration_batch_size).min(1).describe("samples per forward");
    s.field("sensitivity_probe", &O::sensitivity_probe)
        .min(0.01)
        .max(0.95)
        .describe("the ratio each group is pruned at alone to measure its sensitivity");
    s.field("seed", &O::seed).min(0).describe("seed of the calibration subset");
    s.field("system_prompt", &O::system_prompt, ConfigType::kPath)
        .describe("a file replacing the embedded system prompt (default: the embedded one)");
    s.field("user_prompt", &O::user_prompt, ConfigType::kPath)
        .describe(
            "a file replacing the embedded user prompt template ({{task}}, {{budget}}, {{max_ratio}}, "
            "{{schema}}, {{evidence}}; default: the embedded one)");
    return s;
  }();
  return schema;
}

}  // namespace profagent::agents

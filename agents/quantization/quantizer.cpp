// The quantization stage's work (quantizer.hpp).
#include "quantizer.hpp"

#include <algorithm>

#include "profagent/torch/dataset.hpp"

namespace profagent::agents {

const OptionsSchema<QuantizationOptions>& quantization_options_schema() {
  static const OptionsSchema<QuantizationOptions> schema = [] {
    using O = QuantizationOptions;
    OptionsSchema<O> s;
    s.field("scheme", &O::scheme)
        .describe("scheme of every quantizable layer a plan does not name: int8_dynamic, int8_weight_only, fp16, "
                  "bf16, int8_static, none");
    s.field("engine", &O::engine).describe("quantized engine to pack int8 weights for (empty: onednn on x86, qnnpack on ARM)");
    s.field("calibration", &O::calibration)
        .names_provider(torch_tk::kDatasetInterface)
        .describe("data for the accuracy-aware mode: {format: idx|cifar|image_folder, ...}; an empty map means none");
    s.field("calibration_samples", &O::calibration_samples).min(1).describe("fixed-seed calibration samples");
    s.field("calibration_batch_size", &O::calibration_batch_size).min(1).describe("calibration batch size");
    s.field("seed", &O::seed).describe("seed of the calibration subset");
    s.field("max_accuracy_drop", &O::max_accuracy_drop)
        .describe("accuracy-aware mode: the most top-1 points (on the calibration data) quantizing may cost; the "
                  "worst layers go back to fp32 until it holds; < 0: off");
    s.field("max_output_error", &O::max_output_error)
        .describe("accuracy-aware mode: the most relative L2 error of the model's output against fp32; < 0: off");
    return s;
  }();
  return schema;
}

Result<QuantizationOutcome> run_quantization(const QuantizationRequest& request, const QuantizationOptions& options) {
  PROFAGENT_ASSIGN_OR_RETURN(quantize::Scheme fallback, quantize::parse_scheme(options.scheme, "scheme"));
  PROFAGENT_ASSIGN_OR_RETURN(std::vector<quantize::LinearLayer> layers, quantize::find_linear_layers(*request.model));
  std::vector<std::string> paths;
  for (const auto& layer : layers) paths.push_back(layer.path);
  quantize::QuantizationPlan plan = request.plan.value_or(quantize::QuantizationPlan{});
  PROFAGENT_ASSIGN_OR_RETURN(auto schemes, quantize::resolve_layer_schemes(plan, paths, fallback, request.model_name));
  for (const auto& [path, scheme] : schemes)
    if (scheme == quantize::Scheme::kInt8Static)
      return Status(ErrorCode::kUnsupported, "int8_static: needs the static int8 engine (issue 11 item 3)")
          .with_context("layer '" + path + "'");

  QuantizationOutcome outcome;
  Json record{{"format", "profagent.quantization_record"}, {"model", request.model_name}};
  quantize::AccuracyBudget budget;
  if (options.max_accuracy_drop >= 0) budget.max_accuracy_drop = options.max_accuracy_drop;
  if (options.max_output_error >= 0) budget.max_output_error = options.max_output_error;
  std::map<std::string, double> layer_error;
  std::vector<std::string> reverted;
  if (budget.max_accuracy_drop || budget.max_output_error) {
    if (request.calibration.inputs.empty())
      return Status(ErrorCode::kInvalidArgument,
                    "max_accuracy_drop / max_output_error need `calibration` data ({format: idx, ...})");
    PROFAGENT_ASSIGN_OR_RETURN(quantize::AccuracyAwareResult aware,
                               quantize::quantize_within_budget(*request.model, schemes, options.engine,
                                                                request.calibration, budget, request.progress));
    outcome.model = std::move(aware.model);
    layer_error = aware.layer_error;
    reverted = aware.reverted;
    record["accuracy_aware"] = Json{{"budget", {{"max_accuracy_drop", options.max_accuracy_drop},
                                                {"max_output_error", options.max_output_error}}},
                                    {"fp32_accuracy", aware.fp32_accuracy},
                                    {"accuracy", aware.accuracy},
                                    {"output_error", aware.output_error},
                                    {"reverted", aware.reverted},
                                    {"quantizations", aware.quantizations},
                                    {"samples", request.calibration.inputs.empty() ? 0 : options.calibration_samples}};
  } else {
    PROFAGENT_ASSIGN_OR_RETURN(outcome.model, quantize::quantize_linear_layers(*request.model, schemes, options.engine));
  }
  Json rows = Json::array();
  std::int64_t before = 0, after = 0;
  for (const auto& layer : outcome.model.layers) {
    Json row = layer.to_json();
    for (const auto& found : layers) {
      if (found.path != layer.path) continue;
      // A layer left fp32 got no kernel: its ops and bytes are those the model's analysis found.
      if (layer.ops.empty()) row["ops"] = found.ops;
      if (layer.bytes_before == 0) row["bytes_before"] = row["bytes_after"] = found.weight_bytes;
    }
    auto error = layer_error.find(layer.path);
    if (error != layer_error.end()) row["output_error"] = error->second;
    row["reverted"] = std::find(reverted.begin(), reverted.end(), layer.path) != reverted.end();
    auto plan_reason = plan.reasons.find(layer.path);
    if (plan_reason != plan.reasons.end()) row["reason"] = plan_reason->second;
    before += row["bytes_before"].get<std::int64_t>();
    after += row["bytes_after"].get<std::int64_t>();
    rows.push_back(std::move(row));
  }
  record["engine"] = outcome.model.engine;
  record["default_scheme"] = quantize::scheme_name(plan.default_scheme.value_or(fallback));
  record["bytes_before"] = before;
  record["bytes_after"] = after;
  record["layers"] = std::move(rows);
  outcome.record = std::move(record);
  return outcome;
}

}  // namespace profagent::agents

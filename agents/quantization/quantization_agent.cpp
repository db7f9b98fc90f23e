// The quantization stage: the model on port `model` with every linear op quantized per layer
// (int8 dynamic, int8 weight-only, fp16, bf16) by `scheme` and an optional plan, optionally within an
// accuracy budget on calibration data; publishes the model (its engine in profagent_meta.json) and a
// per-layer record. The work lives in quantizer.cpp so that it is testable on its own.
#include <torch/script.h>

#include <algorithm>
#include <memory>
#include <string>

#include "profagent/profagent.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "quantization_record.hpp"
#include "quantizer.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Result;
using profagent::Status;
using profagent::agents::QuantizationOptions;
namespace tk = profagent::torch_tk;

Result<profagent::quantize::CalibrationBatches> read_calibration(AgentContext& context,
                                                                  const QuantizationOptions& options) {
  profagent::quantize::CalibrationBatches data;
  PROFAGENT_ASSIGN_OR_RETURN(auto dataset, tk::make_dataset(context, options.calibration, "calibration"));
  const auto indices = tk::calibration_indices(dataset->info().size, options.calibration_samples, options.seed);
  const auto size = static_cast<std::int64_t>(indices.size());
  for (std::int64_t start = 0; start < size; start += options.calibration_batch_size) {
    std::vector<std::int64_t> chunk(indices.begin() + start,
                                    indices.begin() + std::min(size, start + options.calibration_batch_size));
    tk::Batch batch;  // a fresh one each time: read_batch reuses a batch's tensors
    PROFAGENT_RETURN_IF_ERROR(dataset->read_batch(chunk, batch));
    data.inputs.push_back(batch.images);
    data.labels.push_back(batch.labels);
  }
  return data;
}

class QuantizationAgent : public profagent::Agent {
 public:
  explicit QuantizationAgent(QuantizationOptions options) : options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    auto preparing = context.phase("prepare");
    PROFAGENT_ASSIGN_OR_RETURN(auto model, context.input_as<ModelArtifact>("model"));
    profagent::agents::QuantizationRequest request;
    request.model = &model->module();
    request.model_name = model->display_name();
    if (profagent::ArtifactPtr plan = context.input("plan")) {
      auto parsed = profagent::quantize::parse_quantization_plan(plan->summary());
      if (!parsed) return std::move(parsed).take_status().with_context("reading input port 'plan'");
      request.plan = std::move(parsed).value();
      if (!request.plan) context.log().info("the plan has no 'quantization' section: every layer gets `scheme`");
    }
    // Calibration data serves the accuracy-aware mode only: read when a budget is set.
    const bool budget = options_.max_accuracy_drop >= 0 || options_.max_output_error >= 0;
    if (budget && !options_.calibration.is_null()) {
      auto data = read_calibration(context, options_);
      if (!data) return std::move(data).take_status().with_context("reading `calibration`");
      request.calibration = std::move(data).value();
    }
    request.progress = [&context](const std::string& what, long done, long total) {
      context.progress(what, done, total);
    };
    preparing.stop();
    auto quantizing = context.phase("quantize");
    auto outcome = profagent::agents::run_quantization(request, options_);
    if (!outcome) return std::move(outcome).take_status().with_context("quantizing " + request.model_name);
    quantizing.stop();
    const Json& record = outcome->record;
    context.log().info("quantized {} for engine {}: weights {} -> {} bytes", request.model_name,
                       outcome->model.engine, record["bytes_before"].get<std::int64_t>(),
                       record["bytes_after"].get<std::int64_t>());

    Json made_by{{"engine", outcome->model.engine},
                 {"default_scheme", record["default_scheme"]},
                 {"bytes_before", record["bytes_before"]},
                 {"bytes_after", record["bytes_after"]}};
    Json provenance = profagent::derived_provenance(model->summary(), context.stage_id());
    provenance["quantization"] = made_by;
    Json metadata = model->metadata().is_object() ? model->metadata() : Json::object();
    metadata["quantization"] = made_by;  // the engine travels inside model.pt: loaders select it first
    std::shared_ptr<const torch::jit::Module> module = outcome->model.module;
    PROFAGENT_RETURN_IF_ERROR(context.set_output(
        "model", std::make_shared<ModelArtifact>(module, std::move(provenance), std::move(metadata))));
    return context.set_output("record", std::make_shared<profagent::agents::QuantizationRecord>(
                                            record, profagent::agents::quantization_markdown(record)));
  }

 private:
  QuantizationOptions options_;
};

AgentFactory make_quantization_factory() {
  AgentFactory factory;
  factory.id = "quantization";
  factory.role = "quantization";
  factory.summary =
      "Post-training quantization of every linear op whose weight is a parameter (nn.Linear, F.linear, "
      "addmm/matmul, nn.MultiheadAttention's projections) by rewriting the TorchScript code: int8 dynamic, int8 "
      "weight-only, fp16 or bf16 per layer, by `scheme` and a plan; optionally within an accuracy budget.";
  factory.inputs = {
      {"model", profagent::kinds::kModel, "the model to quantize; it is copied, never changed"},
      {"shapes", profagent::kinds::kShapeSpec, "the input shapes (unused by the rewrite; accepted for symmetry)",
       true},
      {"plan", profagent::kinds::kPlan,
       "{quantization: {default?, layers: {module path: scheme | {scheme, reason}}, ignored_layers?}}", true},
  };
  factory.outputs = {
      {"model", profagent::kinds::kModel,
       "the quantized model (saved and loaded back once; its engine in profagent_meta.json's quantization)"},
      {"record", profagent::agents::kQuantizationRecordKind,
       "format profagent.quantization_record: engine, bytes before/after, layers [{layer, ops, scheme, "
       "bytes_before, bytes_after, weight_rel_error, output_error?, reverted}], accuracy_aware?"}};
  profagent::bind_agent_options<QuantizationOptions>(
      factory, profagent::agents::quantization_options_schema(),
      [](QuantizationOptions options) -> Result<std::unique_ptr<profagent::Agent>> {
        if (options.calibration.is_object() && options.calibration.empty()) options.calibration = Json();
        auto scheme = profagent::quantize::parse_scheme(options.scheme, "scheme");
        if (!scheme) return std::move(scheme).take_status();
        if (!options.calibration.is_null()) {
          auto split = tk::split_dataset_config(options.calibration, "calibration");
          if (!split) return std::move(split).take_status().with_context("reading `calibration`");
        }
        return std::unique_ptr<profagent::Agent>(std::make_unique<QuantizationAgent>(std::move(options)));
      });
  return factory;
}

void register_quantization(profagent::Registrar& registrar) {
  profagent::add_model_artifact_loader(registrar);
  registrar.add_agent(make_quantization_factory());
}

}  // namespace

PROFAGENT_PLUGIN("quantization", "0.1.0", register_quantization);

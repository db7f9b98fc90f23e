// The evaluation stage: measures a model (accuracy on a dataset, agreement with a reference, latency,
// size, parameters, peak memory, environment) and publishes the numbers on port `metrics`. The
// measuring lives in evaluator.cpp so that it is testable on its own.
#include <torch/script.h>

#include <memory>
#include <string>

#include "evaluator.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/profagent.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/quantized_engine.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Result;
using profagent::Status;
using profagent::agents::EvaluationOptions;

class EvaluationAgent : public profagent::Agent {
 public:
  explicit EvaluationAgent(EvaluationOptions options) : options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    profagent::agents::EvaluationInputs inputs;
    PROFAGENT_ASSIGN_OR_RETURN(auto model, context.input_as<ModelArtifact>("model"));
    inputs.model = &model->module();
    inputs.model_summary = model->summary();
    inputs.model_metadata = model->metadata();
    // A quantized model runs (and its copies re-pack) with the engine it was packed for, which
    // environment.quantized_engine then reports; the process's engine is put back after.
    profagent::torch_tk::QuantizedEngineGuard engine(profagent::torch_tk::engine_of_metadata(model->metadata()));
    if (!engine.ok()) return Status(engine.error()).with_context("evaluating the model");
    std::shared_ptr<const ModelArtifact> reference;
    if (context.input("reference")) {
      PROFAGENT_ASSIGN_OR_RETURN(reference, context.input_as<ModelArtifact>("reference"));
      inputs.reference = &reference->module();
    }
    if (profagent::ArtifactPtr shapes = context.input("shapes")) {
      auto specs = profagent::torch_tk::input_specs_from_shape_spec(shapes->summary());
      if (!specs) return std::move(specs).take_status().with_context("reading input port 'shapes'");
      inputs.shapes = std::move(specs).value();
    }
    std::unique_ptr<profagent::torch_tk::Dataset> dataset;
    if (!options_.dataset.is_null()) {
      auto loading = context.phase("load dataset");
      PROFAGENT_ASSIGN_OR_RETURN(dataset, profagent::torch_tk::make_dataset(context, options_.dataset));
      inputs.dataset = dataset.get();
      const auto& info = dataset->info();
      const bool part = options_.limit && *options_.limit < info.size;
      context.log().info("evaluating on {} ({} samples{})", info.source, info.size,
                         part ? ", the first " + std::to_string(*options_.limit) : std::string());
    }
    inputs.work_dir = context.work_dir();

    profagent::agents::EvaluationHooks hooks;
    hooks.cancelled = [&context] { return context.cancelled(); };
    hooks.progress = [&context](long done, long total) { context.progress("batch", done, total); };
    hooks.log = &context.log();
    hooks.phases = &context;
    PROFAGENT_ASSIGN_OR_RETURN(Json metrics, profagent::agents::evaluate(inputs, options_, hooks));

    context.log().info("{}", headline(metrics));
    return context.set_output(
        "metrics", std::make_shared<profagent::JsonArtifact>(profagent::kinds::kMetrics, std::move(metrics)));
  }

 private:
  // One log line with what a reader looks for first.
  static std::string headline(const Json& metrics) {
    std::string line = "evaluated:";
    if (metrics.contains("accuracy"))
      line +=
          fmt::format(" top-1 {:.2f}% top-5 {:.2f}% on {} samples,", 100 * metrics["accuracy"].get<double>(),
                      100 * metrics["top5"].get<double>(), metrics["samples"].get<long>());
    if (metrics.contains("agreement") && metrics["agreement"].contains("top1"))
      line += fmt::format(" agreement {:.2f}% (max |diff| {:.3g}, rel L2 {:.3g}),",
                          100 * metrics["agreement"]["top1"].get<double>(),
                          metrics["agreement"]["max_abs_diff"].get<double>(),
                          metrics["agreement"].value("rel_l2", Json(0.0)).is_number()
                              ? metrics["agreement"]["rel_l2"].get<double>()
                              : 0.0);
    if (metrics.contains("latency_ms"))
      line += fmt::format(" latency p50 {:.3f} ms (batch {}),", metrics["latency_ms"]["p50"].get<double>(),
                          metrics["latency_ms"]["batch_size"].get<long>());
    if (metrics.contains("macs")) line += fmt::format(" {} MACs,", metrics["macs"].get<long>());
    if (metrics.contains("peak_memory_bytes"))
      line += fmt::format(" peak memory {} bytes,", metrics["peak_memory_bytes"].get<long>());
    line += fmt::format(" {} bytes on disk, {} parameters, {} threads", metrics["size_bytes"].get<long>(),
                        metrics["params"].get<long>(), metrics["environment"]["threads"].get<int>());
    return line;
  }

  EvaluationOptions options_;
};

AgentFactory make_evaluation_factory() {
  AgentFactory factory;
  factory.id = "evaluation";
  factory.role = "evaluation";
  factory.summary =
      "Measures a model: top-1/top-5 accuracy on a dataset, agreement with a reference model, latency, size "
      "on "
      "disk, parameters, peak memory of one forward, and the environment (LibTorch, BLAS, threads, engine).";
  factory.inputs = {
      {"model", profagent::kinds::kModel, "the model to evaluate"},
      {"reference", profagent::kinds::kModel,
       "a model to compare with on the same inputs (e.g. the uncompressed baseline): agreement", true},
      {"shapes", profagent::kinds::kShapeSpec,
       "the input shapes ({inputs: [{shape, dtype}]}) used for latency and memory; default: input_shape, "
       "else the dataset's sample shape",
       true},
  };
  factory.outputs = {
      {"metrics", profagent::kinds::kMetrics,
       "accuracy, top5, samples (with a dataset); latency_ms {p50, p90, mean, min, warmup, repeats, "
       "batch_size}; macs (one sample); size_bytes, size_source; params, param_bytes (packed weights of "
       "quantized ops included), param_counting, buffer_bytes; peak_memory_bytes, "
       "peak_memory_method; agreement {top1, max_abs_diff, rel_l2, samples, inputs} (with a reference); "
       "input_shapes; dataset; environment {libtorch, blas, quantized_engine, threads, device, ...}"}};
  profagent::bind_agent_options<EvaluationOptions>(
      factory, profagent::agents::evaluation_options_schema(),
      [](EvaluationOptions options) -> Result<std::unique_ptr<profagent::Agent>> {
        // An empty map is how a workflow says "no dataset" through a var (workflows/prune.yaml's
        // `dataset: {}`): a var cannot switch a `with:` key off, but it can empty it.
        if (options.dataset.is_object() && options.dataset.empty()) options.dataset = Json();
        if (!options.dataset.is_null()) {
          // Checked here so that a missing format fails when the stage starts, before any model work.
          auto split = profagent::torch_tk::split_dataset_config(options.dataset);
          if (!split) return std::move(split).take_status();
        }
        return std::unique_ptr<profagent::Agent>(std::make_unique<EvaluationAgent>(std::move(options)));
      });
  return factory;
}

void register_evaluation(profagent::Registrar& registrar) {
  registrar.add_agent(make_evaluation_factory());
}

}  // namespace

PROFAGENT_PLUGIN("evaluation", "0.1.0", register_evaluation);

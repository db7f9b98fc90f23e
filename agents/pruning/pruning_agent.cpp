// The pruning stage: structured pruning of the model on port `model` through the SDK's dependency
// graph, by a plan, one global ratio or a MAC-reduction target, with an importance provider ranking
// the units; or the replay of a pruning history. Publishes the pruned model and its history. The
// work lives in pruner.cpp so that it is testable on its own.
#include <torch/script.h>

#include <memory>
#include <optional>
#include <string>

#include "profagent/torch/dataset.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/profagent.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/importance.hpp"
#include "pruner.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Result;
using profagent::Status;
using profagent::agents::PruningOptions;
namespace tk = profagent::torch_tk;

double percent_less(std::int64_t before, std::int64_t after) {
  return before > 0 ? 100.0 * (1.0 - static_cast<double>(after) / static_cast<double>(before)) : 0.0;
}

class PruningAgent : public profagent::Agent {
 public:
  explicit PruningAgent(PruningOptions options) : options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    auto preparing = context.phase("prepare");
    PROFAGENT_ASSIGN_OR_RETURN(auto model, context.input_as<ModelArtifact>("model"));
    profagent::agents::PruningRequest request;
    request.model = &model->module();
    request.model_name = model->display_name();
    profagent::ArtifactPtr shapes = context.input("shapes");
    PROFAGENT_ASSIGN_OR_RETURN(request.inputs, tk::example_inputs(shapes ? shapes->summary() : Json(),
                                                                  model->metadata(), "pruning " + request.model_name));
    if (profagent::ArtifactPtr plan = context.input("plan")) {
      auto parsed = profagent::agents::parse_pruning_plan(plan->summary());
      if (!parsed) return std::move(parsed).take_status().with_context("reading input port 'plan'");
      request.plan = std::move(parsed).value();
      if (!request.plan) context.log().info("the plan has no 'pruning' section: pruning by `ratio` alone");
    }
    if (profagent::ArtifactPtr history = context.input("history")) {
      auto parsed = tk::PruneHistory::from_json(history->summary());
      if (!parsed) return std::move(parsed).take_status().with_context("reading input port 'history'");
      request.replay = std::move(parsed).value();
    }

    profagent::agents::PruningHooks hooks;
    hooks.cancelled = [&context] { return context.cancelled(); };
    hooks.progress = [&context](const std::string& what, long done, long total) {
      context.progress(what, done, total);
    };
    hooks.log = &context.log();
    hooks.phases = &context;

    std::unique_ptr<tk::ImportanceCriterion> criterion;
    if (!request.replay) {
      auto made = context.make_provider_as<tk::ImportanceCriterion>(tk::kImportanceInterface, options_.criterion,
                                                                     options_.criterion_config);
      if (!made) return std::move(made).take_status().with_context("making the criterion '" + options_.criterion + "'");
      criterion = std::move(made).value();
      std::shared_ptr<const tk::GradientMap> gradients;
      if (criterion->needs_gradients()) {
        if (options_.calibration.is_null())
          return Status(ErrorCode::kInvalidArgument,
                        "criterion '" + options_.criterion +
                            "' needs gradients: set `calibration` to a dataset ({format: idx, images: ..., labels: "
                            "...}) to compute them on");
        preparing.stop();
        auto calibrating = context.phase("calibration");
        PROFAGENT_ASSIGN_OR_RETURN(auto dataset, profagent::torch_tk::make_dataset(context, options_.calibration));
        context.log().info("gradients for '{}' on {} samples of {}", options_.criterion,
                           std::min(options_.calibration_samples, dataset->info().size), dataset->info().source);
        PROFAGENT_ASSIGN_OR_RETURN(auto computed,
                                   profagent::agents::calibration_gradients(*request.model, *dataset, options_, hooks));
        gradients = std::make_shared<const tk::GradientMap>(std::move(computed));
      }
      request.criterion = profagent::agents::make_prune_criterion(*criterion, gradients, hooks);
    }

    preparing.stop();
    auto pruned = profagent::agents::run_pruning(request, options_, hooks);
    if (!pruned) return std::move(pruned).take_status().with_context("pruning " + request.model_name);
    auto publishing = context.phase("history");
    const tk::PruneResult& result = pruned->result;
    // The engine logged each warning when it built the graph; the history keeps them all.
    if (!result.warnings.empty())
      context.log().info("{} warnings from the dependency graph (history: result.warnings)", result.warnings.size());
    context.log().info(
        "pruned {} ({}): {} of {} groups, params {} -> {} (-{:.1f}%), MACs {} -> {} (-{:.1f}%), graph {:.2f} s, "
        "prune {:.2f} s",
        request.model_name, pruned->mode, result.pruned_groups, result.groups, result.params_before,
        result.params_after, percent_less(result.params_before, result.params_after), result.macs_before,
        result.macs_after, percent_less(result.macs_before, result.macs_after), result.graph_seconds,
        result.prune_seconds);

    Json document = pruned->history_document();
    Json made_by{{"mode", pruned->mode},
                 {"ratio", pruned->ratio},
                 {"criterion", request.replay ? Json("replay") : Json(options_.criterion)},
                 {"params_before", result.params_before},
                 {"params_after", result.params_after},
                 {"macs_before", result.macs_before},
                 {"macs_after", result.macs_after}};
    Json provenance = profagent::derived_provenance(model->summary(), context.stage_id());
    provenance["pruning"] = made_by;
    Json metadata = model->metadata().is_object() ? model->metadata() : Json::object();
    metadata["pruning"] = made_by;  // travels inside the saved model.pt
    auto module = std::make_shared<const torch::jit::Module>(result.module);
    PROFAGENT_RETURN_IF_ERROR(context.set_output(
        "model", std::make_shared<ModelArtifact>(module, std::move(provenance), std::move(metadata))));
    return context.set_output("history", std::make_shared<profagent::JsonArtifact>(
                                             profagent::agents::kPruneHistoryKind, std::move(document)));
  }

 private:
  PruningOptions options_;
};

AgentFactory make_pruning_factory() {
  AgentFactory factory;
  factory.id = "pruning";
  factory.role = "pruning";
  factory.summary =
      "Structured pruning through the dependency graph of the TorchScript IR: removes whole channels, hidden "
      "units and heads (every coupled layer consistently) by a plan, one global ratio or a MAC-reduction "
      "target, ranked by an importance provider; or replays a pruning history.";
  factory.inputs = {
      {"model", profagent::kinds::kModel, "the model to prune; it is copied, never changed"},
      {"shapes", profagent::kinds::kShapeSpec,
       "the input shapes ({inputs: [{shape, dtype}]}, e.g. shape_resolver.spec); default: the shapes stored in "
       "the model file",
       true},
      {"plan", profagent::kinds::kPlan,
       "{pruning: {layers: {module path: ratio | {ratio, reason}}, global_ratio?, ignored_layers?}}", true},
      {"history", profagent::agents::kPruneHistoryKind,
       "a pruning history to replay on this model (the same units are removed; ratios and criterion unused)",
       true},
  };
  factory.outputs = {
      {"model", profagent::kinds::kModel, "the pruned model (saved and loaded back once, so it is what users get)"},
      {"history", profagent::agents::kPruneHistoryKind,
       "format profagent.prune_history: model, options, groups [{key, name, units, removed}] (replayable); "
       "mode, ratio; result {params/macs before and after, groups, pruned_groups, warnings, frozen, timings}; "
       "search (MAC target)"}};
  profagent::bind_agent_options<PruningOptions>(
      factory, profagent::agents::pruning_options_schema(),
      [](PruningOptions options) -> Result<std::unique_ptr<profagent::Agent>> {
        // An empty map is how a workflow says "no calibration" through a var (workflows/prune.yaml).
        if (options.calibration.is_object() && options.calibration.empty()) options.calibration = Json();
        if (!options.calibration.is_null()) {
          // Checked here so that a calibration block without a format fails before any model work.
          auto split = profagent::torch_tk::split_dataset_config(options.calibration);
          if (!split) return std::move(split).take_status().with_context("reading `calibration`");
        }
        return std::unique_ptr<profagent::Agent>(std::make_unique<PruningAgent>(std::move(options)));
      });
  return factory;
}

void register_pruning(profagent::Registrar& registrar) {
  profagent::add_model_artifact_loader(registrar); registrar.add_agent(make_pruning_factory()); }

}  // namespace

PROFAGENT_PLUGIN("pruning", "0.1.0", register_pruning);

// The analysis stage: profile → layer-wise plan. Builds the evidence (the model's prunable groups
// joined with its profile, measured sensitivity with a calibration set), asks the configured llm
// backend (default: the embedded `heuristic` planner) for a reply in the reply schema, checks it,
// re-asks, falls back, and publishes the canonical `plan` (docs/analysis.md). The work is in the
// library's files (evidence, sensitivity, reply_validation, planner_loop); this file adapts the stage.
#include <torch/script.h>

#include <memory>
#include <string>

#include "analysis_options.hpp"
#include "evidence.hpp"
#include "planner_loop.hpp"
#include "profagent/fs.hpp"
#include "profagent/llm.hpp"
#include "profagent/profagent.hpp"
#include "profagent/prune/prune_graph.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/torch/model_io.hpp"
#include "reply_schema.hpp"
#include "sensitivity.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Result;
using profagent::Status;
using profagent::agents::AnalysisOptions;
namespace tk = profagent::torch_tk;

// The metrics a planner needs from a baseline, not the whole environment block.
Json baseline_facts(const Json& metrics) {
  Json out = Json::object();
  for (const char* key : {"accuracy", "top5", "latency_ms", "macs", "params", "size_bytes"})
    if (metrics.contains(key)) out[key] = metrics[key];
  return out;
}

std::string budget_text(const AnalysisOptions& o) {
  std::string text;
  auto add = [&text](const std::string& part) { text += (text.empty() ? "" : ", ") + part; };
  if (o.macs_reduction) add("remove at least " + std::to_string(*o.macs_reduction) + " of the MACs");
  if (o.latency_reduction) add("remove at least " + std::to_string(*o.latency_reduction) + " of the latency");
  if (o.max_accuracy_drop) add("lose at most " + std::to_string(*o.max_accuracy_drop) + " accuracy");
  return text.empty() ? "remove about 0.2 of the MACs" : text;
}

Result<std::string> prompt_template(const std::optional<std::string>& path, const std::string& embedded,
                                    const char* key) {
  if (!path) return embedded;
  auto text = profagent::read_file(*path);
  if (!text) return std::move(text).take_status().with_context("reading `" + std::string(key) + "`");
  return std::move(text).value();
}

// The plan, plus a report.md section: the planner, its warnings and the plan's ratios.
class PlanArtifact : public profagent::JsonArtifact {
 public:
  explicit PlanArtifact(Json plan) : JsonArtifact(profagent::kinds::kPlan, std::move(plan)) {}
  Status save(const std::filesystem::path& dir) const override {
    PROFAGENT_RETURN_IF_ERROR(JsonArtifact::save(dir));
    return profagent::write_file_atomic(dir / "report.md", markdown());
  }

 private:
  std::string markdown() const {
    const Json& plan = data();
    const Json& planner = plan["planner"];
    std::string md = "Planner: `" + planner.value("backend", std::string()) + "` (" +
                     planner.value("model", std::string()) + "), " + std::to_string(planner["calls"].size()) +
                     " calls, fallback: " + (planner.value("fallback", false) ? "**yes**" : "no") + "\n\n";
    for (const Json& warning : planner["warnings"]) md += "- warning: " + warning.get<std::string>() + "\n";
    if (plan.contains("summary")) md += "\n" + plan["summary"].get<std::string>() + "\n";
    if (plan.contains("pruning")) {
      md += "\n| group | ratio | reason |\n|---|---|---|\n";
      for (auto it = plan["pruning"]["layers"].begin(); it != plan["pruning"]["layers"].end(); ++it)
        md += "| `" + it.key() + "` | " + it.value()["ratio"].dump() + " | " +
              it.value()["reason"].get<std::string>() + " |\n";
    }
    if (plan.contains("quantization")) {
      md += "\n| layer | scheme | reason |\n|---|---|---|\n";
      for (auto it = plan["quantization"]["layers"].begin(); it != plan["quantization"]["layers"].end(); ++it)
        md += "| `" + it.key() + "` | " + it.value()["scheme"].get<std::string>() + " | " +
              it.value()["reason"].get<std::string>() + " |\n";
    }
    return md;
  }
};

class AnalysisAgent : public profagent::Agent {
 public:
  explicit AnalysisAgent(AnalysisOptions options) : options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    auto preparing = context.phase("prepare (graph, evidence)");
    PROFAGENT_ASSIGN_OR_RETURN(auto model, context.input_as<ModelArtifact>("model"));
    profagent::ArtifactPtr profile = context.input("profile");
    if (!profile) return Status(ErrorCode::kNotFound, "input port 'profile' is not connected");
    const std::string name = model->display_name();
    profagent::ArtifactPtr shapes = context.input("shapes");
    PROFAGENT_ASSIGN_OR_RETURN(auto inputs, tk::example_inputs(shapes ? shapes->summary() : Json(), model->metadata(),
                                                               "analysis of " + name));
    torch::NoGradGuard no_grad;
    tk::DependencyOptions graph_options;
    graph_options.model_name = name;
    auto graph = tk::build_dependency_graph(model->module(), inputs, graph_options);
    if (!graph) return std::move(graph).take_status().with_context("building the pruning graph of " + name);

    profagent::agents::EvidenceRequest request;
    request.task = options_.task;
    request.model_name = name;
    request.macs_reduction = options_.macs_reduction;
    request.latency_reduction = options_.latency_reduction;
    request.max_accuracy_drop = options_.max_accuracy_drop;
    request.max_ratio = options_.max_ratio;
    request.ignored_layers = options_.ignored_layers;
    request.ignore_input_layer = options_.ignore_input_layer;
    request.profile = profile->summary();
    if (auto history = context.input("history")) request.history = history->summary();
    if (auto baseline = context.input("baseline")) request.baseline = baseline_facts(baseline->summary());
    auto evidence = profagent::agents::build_evidence(**graph, request);
    if (!evidence) return std::move(evidence).take_status().with_context("reading input port 'profile'");
    for (const auto& note : evidence->notes) context.log().info("evidence: {}", note);
    preparing.stop();

    if (!options_.calibration.is_null()) {
      auto measuring = context.phase("sensitivity");
      PROFAGENT_ASSIGN_OR_RETURN(Json sensitivity,
                                 measure(context, model->module(), **graph, evidence->rules.groups));
      profagent::agents::attach_sensitivity(evidence.value(), sensitivity);
      evidence->json["sensitivity_baseline"] = sensitivity["_baseline"];
    }

    auto planning = context.phase("plan");
    const Json schema = profagent::agents::reply_schema(options_.task);
    PROFAGENT_ASSIGN_OR_RETURN(
        std::string system,
        prompt_template(options_.system_prompt, profagent::agents::default_system_prompt(), "system_prompt"));
    PROFAGENT_ASSIGN_OR_RETURN(
        std::string user,
        prompt_template(options_.user_prompt, profagent::agents::default_user_prompt(), "user_prompt"));
    const std::vector<std::pair<std::string, std::string>> values = {
        {"task", options_.task},
        {"budget", budget_text(options_)},
        {"max_ratio", Json(options_.max_ratio).dump()},
        {"schema", schema.dump(2)},
        {"evidence", evidence->json.dump(1)}};
    std::vector<profagent::LlmMessage> messages = {
        {"system", profagent::agents::fill_template(system, values)},
        {"user", profagent::agents::fill_template(user, values)}};
    // What was asked, for whoever reads the run (and the schema a vendor model must follow).
    const auto work = context.work_dir();
    PROFAGENT_RETURN_IF_ERROR(profagent::write_json_atomic(work / "reply_schema.json", schema));
    PROFAGENT_RETURN_IF_ERROR(profagent::write_json_atomic(work / "evidence.json", evidence->json));
    PROFAGENT_RETURN_IF_ERROR(profagent::write_file_atomic(work / "prompt_system.txt", messages[0].content));
    PROFAGENT_RETURN_IF_ERROR(profagent::write_file_atomic(work / "prompt_user.txt", messages[1].content));

    auto backend = context.make_provider_as<profagent::LlmBackend>(profagent::kLlmInterface, options_.llm,
                                                                   options_.llm_config);
    if (!backend)
      return std::move(backend).take_status().with_context("making the llm backend '" + options_.llm + "'");
    profagent::agents::PlannerSettings settings;
    settings.max_reasks = static_cast<int>(options_.max_reasks);
    settings.token_budget = options_.token_budget;
    settings.max_tokens = options_.max_tokens;
    settings.cancelled = [&context] { return context.cancelled(); };
    PROFAGENT_ASSIGN_OR_RETURN(
        auto planned,
        profagent::agents::run_planner(backend->get(), (*backend)->backend_id(), "", std::move(messages),
                                       schema, evidence->json, evidence->rules, settings, context.log()));
    planned.plan["planner"]["llm"] = options_.llm;
    if (planned.plan.contains("pruning")) {
      int pruned = 0;
      for (const auto& entry : planned.plan["pruning"]["layers"])
        pruned += entry["ratio"].get<double>() > 0.0;
      context.log().info("plan by {} ({}): {} of {} groups pruned, {} warnings{}", options_.llm,
                         planned.plan["planner"]["model"].get<std::string>(), pruned,
                         evidence->rules.groups.size(), planned.warnings.size(),
                         planned.plan["planner"]["fallback"].get<bool>() ? ", fallback" : "");
    }
    return context.set_output("plan", std::make_shared<PlanArtifact>(std::move(planned.plan)));
  }

 private:
  Result<Json> measure(AgentContext& context, const torch::jit::Module& module,
                       const tk::DependencyGraph& graph, const std::vector<std::string>& groups) {
    PROFAGENT_ASSIGN_OR_RETURN(auto dataset, tk::make_dataset(context, options_.calibration, "calibration"));
    const auto indices =
        tk::calibration_indices(dataset->info().size, options_.calibration_samples, options_.seed);
    profagent::agents::SensitivityRequest request;
    request.probe_ratio = options_.sensitivity_probe;
    request.groups = groups;
    const auto size = static_cast<std::int64_t>(indices.size());
    for (std::int64_t start = 0; start < size; start += options_.calibration_batch_size) {
      std::vector<std::int64_t> chunk(
          indices.begin() + start, indices.begin() + std::min(size, start + options_.calibration_batch_size));
      tk::Batch batch;  // a fresh one each time: read_batch reuses a batch's tensors
      PROFAGENT_RETURN_IF_ERROR(dataset->read_batch(chunk, batch));
      request.batches.emplace_back(batch.images, batch.labels);
    }
    request.cancelled = [&context] { return context.cancelled(); };
    request.progress = [&context](long done, long total) { context.progress("sensitivity", done, total); };
    context.log().info("sensitivity of {} groups at ratio {} on {} samples of {}", groups.size(),
                       options_.sensitivity_probe, size, dataset->info().source);
    return profagent::agents::measure_sensitivity(module, graph, request);
  }

  AnalysisOptions options_;
};

AgentFactory make_analysis_factory() {
  AgentFactory factory;
  factory.id = "analysis";
  factory.role = "analysis";
  factory.summary =
      "Profile -> layer-wise plan: the model's prunable groups joined with its profile (and measured "
      "sensitivity) are given to an llm backend (default: the embedded heuristic planner); every reply is "
      "checked (real layers, ratios under the cap, the task's actions), re-asked, or replaced by the "
      "embedded "
      "planner. The reply's JSON Schema: docs/analysis.md, and work/reply_schema.json of each run.";
  factory.inputs = {
      {"model", profagent::kinds::kModel, "the model to plan for"},
      {"profile", profagent::kinds::kProfile,
       "its profile (a profiler stage's profile): per-layer latency, bound"},
      {"shapes", profagent::kinds::kShapeSpec, "input shapes; default: those stored in the model file", true},
      {"history", profagent::kinds::kHistory, "a loop's history: earlier plans, metrics, decisions", true},
      {"baseline", profagent::kinds::kMetrics, "the unpruned model's metrics (accuracy, latency)", true},
  };
  factory.outputs = {
      {"plan", profagent::kinds::kPlan,
       "{pruning: {global_ratio, layers: {group: {ratio, reason}}, ignored_layers}, quantization?: "
       "{default, layers: {layer: {scheme, reason}}, ignored_layers}, summary, planner: {backend, "
       "model, calls, warnings, fallback}}"}};
  profagent::bind_agent_options<AnalysisOptions>(
      factory, profagent::agents::analysis_options_schema(),
      [](AnalysisOptions options) -> Result<std::unique_ptr<profagent::Agent>> {
        // An empty map is how a workflow says "no calibration" through a var.
        if (options.calibration.is_object() && options.calibration.empty()) options.calibration = Json();
        if (!options.calibration.is_null()) {
          auto split = tk::split_dataset_config(options.calibration, "calibration");
          if (!split) return std::move(split).take_status().with_context("reading `calibration`");
        }
        return std::unique_ptr<profagent::Agent>(std::make_unique<AnalysisAgent>(std::move(options)));
      });
  return factory;
}

void register_analysis(profagent::Registrar& registrar) {
  registrar.add_agent(make_analysis_factory());
}

}  // namespace

PROFAGENT_PLUGIN("analysis", "0.1.0", register_analysis);

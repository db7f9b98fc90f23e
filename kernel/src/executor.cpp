#include "profagent/kernel/executor.hpp"

#include <chrono>
#include <ctime>
#include <optional>

#include "profagent/kernel/blackboard.hpp"
#include "profagent/kernel/condition.hpp"
#include "profagent/kernel/interrupt.hpp"
#include "profagent/kernel/validator.hpp"
#include "profagent/clock.hpp"
#include "profagent/log.hpp"
#include "profagent/version.hpp"
#include "report_markdown.hpp"

#include "stage_context.hpp"

namespace profagent::kernel {

namespace {

using Clock = SteadyClock;

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

// Summaries go into histories and reports; a huge one (a full profile) is cut to its small
// top-level entries so that report.json stays readable and prompts stay short.
Json compact_summary(const Artifact& artifact) {
  constexpr std::size_t kMaxSummaryBytes = 16 * 1024;
  constexpr std::size_t kMaxEntryBytes = 2 * 1024;
  Json summary = artifact.summary();
  if (summary.dump().size() <= kMaxSummaryBytes || !summary.is_object()) return summary;
  Json compact = Json::object();
  for (const auto& [key, value] : summary.items())
    if (value.dump().size() <= kMaxEntryBytes) compact[key] = value;
  compact["summary_truncated"] = true;
  return compact;
}

// final - baseline and final / baseline for every number the two metrics share (nested objects
// such as latency_ms included), so a reader sees at once what compression bought and cost.
Json metrics_change(const Json& baseline, const Json& final_metrics) {
  Json change = Json::object();
  for (const auto& [key, before] : baseline.items()) {
    if (!final_metrics.contains(key)) continue;
    const Json& after = final_metrics[key];
    if (before.is_number() && after.is_number()) {
      double b = before.get<double>(), a = after.get<double>();
      change[key] = {{"delta", a - b}};
      if (b != 0) change[key]["ratio"] = a / b;
    } else if (before.is_object() && after.is_object()) {
      Json nested = metrics_change(before, after);
      if (!nested.empty()) change[key] = nested;
    }
  }
  return change;
}

Status interrupted_status() { return cancelled_status("the run", "by the user (SIGINT)"); }

// What a stage execution needs to know, whether it is a workflow stage or a loop's decide stage.
struct Invocation {
  std::string id;
  std::string agent;
  const std::vector<Binding>* inputs;
  const ConfigBlock* with;
  SourceLocation location;
  // `loop.history` as the decide stage sees it: including the iteration just finished.
  ArtifactPtr history_override;
};

}  // namespace

const char* to_string(RunStatus status) {
  switch (status) {
    case RunStatus::kCompleted: return "completed";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kInterrupted: return "interrupted";
  }
  return "unknown";
}

struct Executor::State {
  const Workflow& workflow;
  const Registry& registry;
  const RunStore& store;
  Blackboard board;
  Json report;
  std::vector<ReportSection> sections;  // Markdown that artifacts carry, in completion order
  Clock::time_point started = Clock::now();

  // report.json for machines and report.md for people, rewritten together.
  Status write_report(const std::string& status) {
    report["status"] = status;
    report["seconds"] = seconds_since(started);
    PROFAGENT_RETURN_IF_ERROR(store.write_json("report.json", report));
    return store.write_text("report.md", render_report_markdown(report, sections));
  }

  // An output saved with a report.md beside its payload contributes it to the run's report.md.
  void record_section(const std::string& key, const std::string& stage_path, const std::string& port) {
    std::string markdown = read_report_section(store.stage_dir(stage_path) / "outputs" / port);
    if (!markdown.empty()) sections.push_back({key, std::move(markdown)});
  }

  void add_stage_report(Json entry) {
    report["stages"].push_back(std::move(entry));
    Status written = write_report("running");
    if (!written) log().warn("could not update report.json: {}", written.to_string());
  }

  // Every evaluation's metrics appear in report.json under "metrics", keyed like the blackboard.
  void record_metrics(const std::string& key, const Artifact& artifact) {
    if (artifact.kind() == kinds::kMetrics) report["metrics"][key] = artifact.summary();
  }

  // The artifact a binding refers to, as seen from `scope`; `what` names the binding in the error.
  Result<ArtifactPtr> lookup(const Scope& scope, const Binding& binding, const std::string& what) const {
    auto key = scope.key_of(binding.ref.stage, binding.ref.port);
    ArtifactPtr value = key ? board.get(*key) : nullptr;
    if (!value)
      return Status(ErrorCode::kRuntime,
                    what + " '" + binding.name + "' refers to " + binding.ref.text() + ", which was not produced");
    return value;
  }

  Result<std::map<std::string, ArtifactPtr>> resolve_inputs(const Invocation& call, const Scope& scope,
                                                            const AgentFactory& factory) {
    std::map<std::string, ArtifactPtr> inputs;
    for (const auto& binding : *call.inputs) {
      if (call.history_override && binding.ref.stage == "loop" && binding.ref.port == "history") {
        inputs[binding.name] = call.history_override;
        continue;
      }
      auto artifact = lookup(scope, binding, "input");
      if (!artifact) {
        const PortSpec* port = factory.find_input(binding.name);
        if (port && port->optional) continue;  // an optional output upstream that was not set
        return std::move(artifact).take_status();
      }
      inputs[binding.name] = artifact.value();
    }
    return inputs;
  }

  Status run_agent_stage(const Invocation& call, const Scope& scope, const std::string& label) {
    const std::string stage_path = scope.stage_path(call.id);
    const std::string display_id = scope.key_prefix() + call.id;
    const AgentFactory* factory = registry.find_agent(call.agent);
    std::string where = "in stage '" + display_id + "' (agent '" + call.agent + "', " + call.location.to_string() + ")";
    if (!factory) return Status(ErrorCode::kNotFound, "unknown agent '" + call.agent + "'").with_context(where);

    Json entry = {{"id", display_id}, {"path", stage_path}, {"agent", call.agent}, {"iteration", scope.iteration()}};

    // Resume: a stage that completed in an earlier run is loaded, not run.
    auto completed = store.load_completed(stage_path);
    if (!completed) return std::move(completed).take_status().with_context(where);
    if (completed.value()) {
      Json outputs = Json::object();
      for (const auto& [port, artifact] : completed.value()->outputs) {
        PROFAGENT_RETURN_IF_ERROR(board.put(scope.own_key(call.id, port), artifact));
        record_metrics(scope.own_key(call.id, port), *artifact);
        record_section(scope.own_key(call.id, port), stage_path, port);
        outputs[port] = compact_summary(*artifact);
      }
      log().info("{} {} ({}): completed in the earlier run, loaded", label, display_id, call.agent);
      entry.update({{"status", "completed"}, {"resumed", true}, {"seconds", completed.value()->seconds},
                    {"outputs", outputs}});
      add_stage_report(std::move(entry));
      return Status::ok();
    }

    if (interrupt_requested()) return interrupted_status();
    log().info("{} {} ({})", label, display_id, call.agent);
    auto start = Clock::now();

    std::optional<StageContext> context;
    auto fail = [&](Status status, const char* state) {
      store.discard_stage_outputs(stage_path);
      entry.update({{"status", state}, {"seconds", seconds_since(start)}, {"error", status.message()}});
      if (context) entry["phases"] = context->phases_report();
      add_stage_report(std::move(entry));
      return std::move(status).with_context(where);
    };

    auto config = factory->config.resolve(call.with->value);
    if (!config) return fail(std::move(config).take_status(), "failed");
    auto inputs = resolve_inputs(call, scope, *factory);
    if (!inputs) return fail(std::move(inputs).take_status(), "failed");
    Status begun = store.begin_stage(stage_path);
    if (!begun) return fail(begun, "failed");

    context.emplace(display_id, scope.iteration(), *factory, config.value(), std::move(inputs).value(),
                    store.work_dir(stage_path), store.dir(), registry, workflow);
    // Plugin code is called only through the SDK's wrappers, which turn exceptions into a Status.
    Status ran;
    auto agent = make_agent(*factory, config.value());
    if (!agent) {
      ran = std::move(agent).take_status();
    } else {
      ran = agent.value()->execute(*context, call.agent);
    }
    if (ran.is_ok()) ran = context->check_outputs_complete();
    if (!ran.is_ok()) {
      bool interrupted = ran.code() == ErrorCode::kCancelled;
      return fail(ran, interrupted ? "interrupted" : "failed");
    }

    Json outputs = Json::object();
    Json ports = Json::array();
    {
      auto saving = context->phase("save outputs");
      for (const auto& [port, artifact] : context->outputs()) {
        Status saved = store.save_output(stage_path, port, *artifact);
        if (!saved) return fail(saved, "failed");
        outputs[port] = compact_summary(*artifact);
        ports.push_back(port);
      }
    }
    double seconds = seconds_since(start);
    Json record = {{"status", "completed"}, {"stage", display_id}, {"agent", call.agent},
                   {"seconds", seconds}, {"outputs", ports}, {"finished_at", utc_now()}};
    Status marked = store.complete_stage(stage_path, record);
    if (!marked) return fail(marked, "failed");
    for (const auto& [port, artifact] : context->outputs()) {
      PROFAGENT_RETURN_IF_ERROR(board.put(scope.own_key(call.id, port), artifact));
      record_metrics(scope.own_key(call.id, port), *artifact);
      record_section(scope.own_key(call.id, port), stage_path, port);
    }

    log().info("{} {} completed in {:.2f} s", label, display_id, seconds);
    entry.update({{"status", "completed"}, {"seconds", seconds}, {"phases", context->phases_report()},
                  {"outputs", outputs}});
    add_stage_report(std::move(entry));
    return Status::ok();
  }

  Status run_scope(const std::vector<StageSpec>& stages, const Scope& scope, const std::string& label_prefix) {
    auto order = topological_order(stages);
    int index = 0;
    for (const StageSpec* stage : order) {
      ++index;
      if (interrupt_requested()) return interrupted_status();
      std::string label = "[" + label_prefix + std::to_string(index) + "/" + std::to_string(order.size()) + "]";
      if (stage->is_loop()) {
        PROFAGENT_RETURN_IF_ERROR(run_loop(*stage, scope, label));
      } else {
        Invocation call{stage->id, stage->agent, &stage->inputs, &stage->with, stage->location, nullptr};
        PROFAGENT_RETURN_IF_ERROR(run_agent_stage(call, scope, label));
      }
    }
    return Status::ok();
  }

  Status run_loop(const StageSpec& stage, const Scope& scope, const std::string& label) {
    const LoopSpec& loop = *stage.loop;
    const std::string display_id = scope.key_prefix() + stage.id;
    std::string where = "in loop '" + display_id + "' (" + stage.location.to_string() + ")";
    auto start = Clock::now();

    std::map<std::string, ArtifactPtr> carry;
    for (const auto& binding : loop.carry) {
      auto value = lookup(scope, binding, "carry");
      if (!value) return std::move(value).take_status().with_context(where);
      carry[binding.name] = value.value();
    }

    std::optional<Condition> until;
    if (loop.until) {
      auto parsed = Condition::parse(loop.until->text);
      if (!parsed) return std::move(parsed).take_status().with_context(where);
      until = std::move(parsed).value();
    }

    std::set<std::string> body_ids;
    for (const auto& body_stage : loop.stages) body_ids.insert(body_stage.id);

    Json iterations = Json::array();
    std::vector<std::map<std::string, ArtifactPtr>> carry_after;  // [i-1] = carry after iteration i
    std::string stop_reason = "max_iterations (" + std::to_string(loop.max_iterations) + ") reached";
    int selected = 0;

    for (int iteration = 1; iteration <= loop.max_iterations; ++iteration) {
      if (interrupt_requested()) return interrupted_status();
      log().info("{} {}: iteration {}/{}", label, display_id, iteration, loop.max_iterations);
      Scope body(&scope, stage.id, iteration, body_ids);
      Json history_so_far = {{"loop", display_id}, {"iterations", iterations}};
      for (const auto& [name, value] : carry) PROFAGENT_RETURN_IF_ERROR(board.put(body.own_key("loop", name), value));
      PROFAGENT_RETURN_IF_ERROR(board.put(body.own_key("loop", "iteration"),
                                          std::make_shared<JsonArtifact>(kinds::kJson, Json(iteration))));
      PROFAGENT_RETURN_IF_ERROR(board.put(body.own_key("loop", "history"),
                                          std::make_shared<JsonArtifact>(kinds::kHistory, history_so_far)));

      std::string body_label = stage.id + " " + std::to_string(iteration) + ": ";
      Status body_status = run_scope(loop.stages, body, body_label);
      if (!body_status) return std::move(body_status).with_context(where);

      std::map<std::string, ArtifactPtr> next = carry;
      for (const auto& binding : loop.next) {
        auto value = lookup(body, binding, "next");
        if (!value) return std::move(value).take_status().with_context(where);
        next[binding.name] = value.value();
      }

      Json entry = {{"iteration", iteration}, {"outputs", Json::object()}};
      for (const auto& body_stage : loop.stages) {
        const AgentFactory* factory = body_stage.is_loop() ? nullptr : registry.find_agent(body_stage.agent);
        if (!factory) continue;
        for (const auto& port : factory->outputs) {
          ArtifactPtr value = board.get(body.own_key(body_stage.id, port.name));
          if (value) entry["outputs"][body_stage.id + "." + port.name] = compact_summary(*value);
        }
      }

      bool stop = false;
      if (until) {
        auto holds = until->evaluate([&](const std::string& s, const std::string& p) -> std::optional<Json> {
          auto key = body.key_of(s, p);
          ArtifactPtr value = key ? board.get(*key) : nullptr;
          if (!value) return std::nullopt;
          return value->summary();
        });
        if (!holds)
          return std::move(holds).take_status().with_context("evaluating until: " + loop.until->text + " (" +
                                                             loop.until->location.to_string() + ")").with_context(where);
        entry["until"] = holds.value();
        if (holds.value()) {
          stop = true;
          stop_reason = "until: " + loop.until->text;
        }
      }
      iterations.push_back(entry);

      if (loop.decide) {
        static const std::vector<Binding> kDefaultDecideInputs = {
            Binding{"history", PortRef{"loop", "history", loop.decide->location}, loop.decide->location}};
        Json history_now = {{"loop", display_id}, {"iterations", iterations}};
        Invocation call{"@decide", loop.decide->agent,
                        loop.decide->inputs.empty() ? &kDefaultDecideInputs : &loop.decide->inputs,
                        &loop.decide->with, loop.decide->location,
                        std::make_shared<JsonArtifact>(kinds::kHistory, history_now)};
        Scope decide_scope(&scope, stage.id, iteration, body_ids);
        decide_scope.add_stage("@decide");
        Status decided = run_agent_stage(call, decide_scope, "[" + body_label + "decide]");
        if (!decided) return std::move(decided).with_context(where);
        ArtifactPtr decision = board.get(decide_scope.own_key("@decide", "decision"));
        if (!decision) return Status(ErrorCode::kRuntime, "the decide agent set no 'decision'").with_context(where);
        Json verdict = decision->summary();
        if (!verdict.is_object() || !verdict.contains("stop") || !verdict["stop"].is_boolean())
          return Status(ErrorCode::kRuntime, "the decision of agent '" + loop.decide->agent +
                                                 "' has no boolean \"stop\": " + verdict.dump()).with_context(where);
        if (verdict.contains("select")) {
          if (!verdict["select"].is_number_integer() || verdict["select"].get<int>() < 1 ||
              verdict["select"].get<int>() > iteration)
            return Status(ErrorCode::kRuntime, "the decision selects iteration " + verdict["select"].dump() +
                                                   ", which is not one of 1.." + std::to_string(iteration))
                .with_context(where);
          selected = verdict["select"].get<int>();
        }
        iterations.back()["decision"] = verdict;
        if (verdict["stop"].get<bool>() && !stop) {
          stop = true;
          stop_reason = "decided by '" + loop.decide->agent + "': " + verdict.value("reason", std::string("stop"));
        }
      }

      carry_after.push_back(next);
      carry = std::move(next);
      if (stop) break;
    }

    int chosen = selected > 0 ? selected : static_cast<int>(carry_after.size());
    const auto& result = chosen > 0 ? carry_after[chosen - 1] : carry;
    Json history = {{"loop", display_id}, {"iterations", iterations}, {"stop_reason", stop_reason},
                    {"selected", chosen}};
    auto history_artifact = std::make_shared<JsonArtifact>(kinds::kHistory, history);
    for (const auto& [name, value] : result) PROFAGENT_RETURN_IF_ERROR(board.put(scope.own_key(stage.id, name), value));
    PROFAGENT_RETURN_IF_ERROR(board.put(scope.own_key(stage.id, "history"), history_artifact));

    log().info("{} {} finished after {} iteration(s): {}; result of iteration {}", label, display_id,
               iterations.size(), stop_reason, chosen);
    add_stage_report({{"id", display_id}, {"path", scope.stage_path(stage.id)}, {"loop", true},
                      {"status", "completed"}, {"seconds", seconds_since(start)},
                      {"iterations", iterations.size()}, {"stop_reason", stop_reason}, {"selected", chosen}});
    return Status::ok();
  }

  Status publish_workflow_outputs() {
    Scope top;
    for (const auto& stage : workflow.stages) top.add_stage(stage.id);
    for (const auto& binding : workflow.outputs) {
      PROFAGENT_ASSIGN_OR_RETURN(ArtifactPtr value, lookup(top, binding, "workflow output"));
      PROFAGENT_RETURN_IF_ERROR(store.save_workflow_output(binding.name, *value));
      report["outputs"][binding.name] = compact_summary(*value);
      // A workflow that compares its result with its starting model names those metrics outputs
      // "baseline" and "final"; they are lifted to the top of the report with their differences.
      if ((binding.name == "baseline" || binding.name == "final") && value->kind() == kinds::kMetrics)
        report[binding.name] = value->summary();
    }
    if (report.contains("baseline") && report.contains("final"))
      report["change"] = metrics_change(report["baseline"], report["final"]);
    return Status::ok();
  }
};

Executor::Executor(const Workflow& workflow, const Registry& registry, const RunStore& store)
    : workflow_(workflow), registry_(registry), store_(store) {}

RunOutcome Executor::run() {
  State state{workflow_, registry_, store_, {}, Json::object(), {}, Clock::now()};
  auto previous = store_.read_json("report.json");
  state.report = {{"profagent_version", kSdkVersion},
                  {"workflow", {{"name", workflow_.name}, {"file", workflow_.file}}},
                  {"run_dir", store_.dir().string()},
                  {"status", "running"},
                  {"started_at", utc_now()},
                  {"seconds", 0.0},
                  {"stages", Json::array()},
                  {"metrics", Json::object()},
                  {"outputs", Json::object()}};
  if (previous && previous->contains("started_at")) {
    state.report["resumed_at"] = state.report["started_at"];
    state.report["started_at"] = (*previous)["started_at"];
  }
  (void)state.write_report("running");

  Scope top;
  for (const auto& stage : workflow_.stages) top.add_stage(stage.id);
  Status status = state.run_scope(workflow_.stages, top, "");
  if (status.is_ok()) status = state.publish_workflow_outputs();

  RunOutcome outcome;
  if (status.is_ok()) {
    outcome.status = RunStatus::kCompleted;
  } else {
    outcome.status = status.code() == ErrorCode::kCancelled ? RunStatus::kInterrupted : RunStatus::kFailed;
    outcome.error = status;
    state.report["error"] = status.to_string();
    if (outcome.status == RunStatus::kInterrupted)
      state.report["resume_with"] = "profagent-run --resume " + store_.dir().string();
  }
  state.report["finished_at"] = utc_now();
  Status written = state.write_report(to_string(outcome.status));
  if (!written) {
    // A run whose final report is missing or stale has not delivered what it promises: it fails.
    log().error("could not write report.json: {}", written.to_string());
    if (outcome.status == RunStatus::kCompleted) {
      outcome.status = RunStatus::kFailed;
      outcome.error = std::move(written).with_context("writing the final report");
      state.report["status"] = to_string(outcome.status);
      state.report["error"] = outcome.error.to_string();
    }
  }
  outcome.report = state.report;
  for (const auto& section : state.sections) outcome.report_sections += section.markdown + "\n";
  return outcome;
}

}  // namespace profagent::kernel

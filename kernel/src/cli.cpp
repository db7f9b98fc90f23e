#include "profagent/kernel/cli.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <mutex>

#include "profagent/fs.hpp"
#include "profagent/kernel/executor.hpp"
#include "profagent/kernel/interrupt.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/run_store.hpp"
#include "profagent/kernel/validator.hpp"
#include "profagent/kernel/workflow_parser.hpp"
#include "profagent/log.hpp"
#include "profagent/plugin.hpp"
#include "profagent/text.hpp"
#include "profagent/version.hpp"
#include "llm_readiness.hpp"
#include "plan_printer.hpp"
#include "secret_redaction.hpp"

namespace profagent::kernel {

namespace fs = std::filesystem;

namespace {

struct Options {
  std::string workflow;
  std::vector<std::string> sets;
  std::string output_dir;
  std::vector<std::string> plugin_paths;
  std::string log_level = "info";
  std::string resume_dir;
  bool validate = false;
  bool plan = false;
  bool list_plugins = false;
  std::string describe;
  bool version = false;
};

// The run's secret values (docs/llm_backends.md, "Secrets"), known once the workflow is: every log
// line, on the console and in the run log, and every error printed has them replaced. Nothing should
// log a key; this makes sure a mistake does not show it.
class RedactorSlot {
 public:
  void set(SecretRedactor redactor) {
    std::lock_guard<std::mutex> lock(mutex_);
    redactor_ = std::move(redactor);
  }
  std::string text(std::string text) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return redactor_.text(std::move(text));
  }

 private:
  mutable std::mutex mutex_;
  SecretRedactor redactor_;
};

RedactorSlot& secrets() {
  static RedactorSlot slot;
  return slot;
}

// A sink that passes each message, scrubbed, to the sink it wraps (which formats and writes it).
class ScrubbingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ScrubbingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    const std::string text = secrets().text(std::string(message.payload.data(), message.payload.size()));
    spdlog::details::log_msg scrubbed(message.time, message.source, message.logger_name, message.level, text);
    inner_->log(scrubbed);
  }
  void flush_() override { inner_->flush(); }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

void setup_console_logger(spdlog::level::level_enum level) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("%^[%l]%$ %v");
  auto sink = std::make_shared<ScrubbingSink>(console);
  sink->set_level(level);
  auto logger = std::make_shared<spdlog::logger>("profagent", sink);
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::info);
  set_logger(logger);
}

// From the run on, every log line also goes to <run>/logs/run.log, at debug level.
void add_run_log(const fs::path& file) {
  auto writer = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), false);
  writer->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%l] %v");
  auto sink = std::make_shared<ScrubbingSink>(writer);
  sink->set_level(spdlog::level::debug);
  logger_ptr()->sinks().push_back(sink);
}

void print_error(const std::string& text) { std::cerr << "error: " << secrets().text(text) << "\n"; }

Result<std::vector<std::pair<std::string, std::string>>> parse_sets(const std::vector<std::string>& sets) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& text : sets) {
    auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status(ErrorCode::kInvalidArgument, "--set " + text + ": expected NAME=VALUE");
    out.emplace_back(text.substr(0, eq), text.substr(eq + 1));
  }
  return out;
}

int print_diagnostics(const std::vector<Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) std::cerr << d.to_string() << "\n";
  std::cerr << diagnostics.size() << " error(s); nothing was run\n";
  return kExitInvalid;
}

// Loads every plugin on the search path. Returns false (after printing why) when any was refused.
// Precedence, first wins: what the user says for this run (--plugin-path, then PROFAGENT_PLUGIN_PATH),
// then the workflow's plugin_paths, then the installed plugins; a later copy of a plugin id is shadowed.
bool load_plugins(PluginManager& manager, const Registry& registry, const Options& options,
                  const std::vector<std::string>& workflow_plugin_paths) {
  for (const auto& dir : options.plugin_paths) manager.add_search_path(dir);
  for (const auto& dir : plugin_path_from_env()) manager.add_search_path(dir);
  for (const auto& dir : workflow_plugin_paths) manager.add_search_path(dir);
  for (const auto& dir : default_plugin_dirs()) manager.add_search_path(dir);
  manager.load_all();
  auto refused = registry.refused();
  if (refused.empty()) return true;
  for (const auto* record : refused) std::cerr << "plugin refused: " << record->path << ": " << record->refusal << "\n";
  return false;
}

int list_plugins(const Registry& registry) {
  std::printf("%-22s %-9s %-8s %-48s %s\n", "ID", "VERSION", "STATUS", "ROLES", "PATH");
  for (const auto& plugin : registry.plugins()) {
    const bool shadowed = !plugin.shadowed_by.empty();
    std::printf("%-22s %-9s %-8s %-48s %s\n", plugin.id.empty() ? "?" : plugin.id.c_str(),
                plugin.version.empty() ? "?" : plugin.version.c_str(),
                plugin.loaded ? "loaded" : shadowed ? "shadowed" : "REFUSED",
                plugin.loaded ? join(plugin.roles, ",").c_str() : "-", plugin.path.c_str());
    if (shadowed)
      std::printf("    shadowed by: %s (earlier on the search path; this copy is not loaded)\n",
                  plugin.shadowed_by.c_str());
    else if (!plugin.loaded)
      std::printf("    reason: %s\n", plugin.refusal.c_str());
  }
  if (registry.plugins().empty()) std::printf("(no plugins found on the search path)\n");
  return kExitOk;
}

void print_schema(const ConfigSchema& schema) {
  if (schema.fields().empty()) {
    std::printf("  (no configuration)\n");
    return;
  }
  for (const auto& field : schema.fields()) {
    std::string type = to_string(field.type);
    if (field.type == ConfigType::kEnum) type += " {" + join(field.choices, "|") + "}";
    std::string bounds;
    if (field.min) bounds += " min " + Json(*field.min).dump();
    if (field.max) bounds += " max " + Json(*field.max).dump();
    std::string attrs = field.required ? " required" : "";
    if (field.default_value) attrs += " default " + field.default_value->dump();
    if (field.secret) attrs += " secret";
    if (!field.provider_interface.empty()) attrs += " names a '" + field.provider_interface + "' provider";
    if (!field.provider_key.empty()) attrs += " configures the provider '" + field.provider_key + "' names";
    std::printf("  %-18s %-14s%s%s\n      %s\n", field.name.c_str(), type.c_str(), bounds.c_str(), attrs.c_str(),
                field.description.c_str());
  }
}

void print_ports(const char* title, const std::vector<PortSpec>& ports) {
  std::printf("%s:\n", title);
  if (ports.empty()) std::printf("  (none)\n");
  for (const auto& port : ports)
    std::printf("  %-18s %-12s%s %s\n", port.name.c_str(), port.kind.c_str(), port.optional ? " optional" : "",
                port.description.c_str());
}

int describe(const Registry& registry, const std::string& id) {
  if (const AgentFactory* agent = registry.find_agent(id)) {
    std::printf("agent %s (role: %s)\n  %s\n  from %s\n", agent->id.c_str(), agent->role.c_str(),
                agent->summary.c_str(), registry.origin_of_agent(id).c_str());
    print_ports("inputs", agent->inputs);
    print_ports("outputs", agent->outputs);
    std::printf("config (with:):\n");
    print_schema(agent->config);
    std::printf("JSON Schema of with:\n%s\n", agent->config.to_json_schema().dump(2).c_str());
    return kExitOk;
  }
  // Providers are named "interface/id" or just "id" when that is unambiguous.
  std::vector<const ProviderFactory*> matches;
  for (const auto* provider : registry.providers())
    if (provider->id == id || provider->interface + "/" + provider->id == id) matches.push_back(provider);
  if (matches.size() == 1) {
    const ProviderFactory* provider = matches.front();
    std::printf("provider %s/%s\n  %s\n", provider->interface.c_str(), provider->id.c_str(), provider->summary.c_str());
    std::printf("config:\n");
    print_schema(provider->config);
    std::printf("JSON Schema of the config:\n%s\n", provider->config.to_json_schema().dump(2).c_str());
    return kExitOk;
  }
  if (matches.size() > 1) {
    print_error("'" + id + "' names several providers; use INTERFACE/ID");
    return kExitInvalid;
  }
  std::vector<std::string> known;
  for (const auto* agent : registry.agents()) known.push_back(agent->id);
  for (const auto* provider : registry.providers()) known.push_back(provider->interface + "/" + provider->id);
  print_error("no agent or provider '" + id + "' (known: " + (known.empty() ? "none" : join(known, ", ")) + ")");
  return kExitInvalid;
}

std::string default_run_dir(const Workflow& workflow) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  std::string name = workflow.name.empty() ? fs::path(workflow.file).stem().string() : workflow.name;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  fs::path base = fs::path("runs") / (std::string(stamp) + "-" + name);
  fs::path dir = base;
  for (int n = 2; fs::exists(dir); ++n) dir = base.string() + "-" + std::to_string(n);
  return dir.string();
}

void print_summary(const Json& report) {
  std::fprintf(stderr, "\n%-32s %-16s %-12s %9s\n", "STAGE", "AGENT", "STATUS", "SECONDS");
  for (const auto& stage : report["stages"]) {
    std::string status = stage.value("status", "");
    if (stage.value("resumed", false)) status += " (resumed)";
    std::string agent = stage.value("loop", false) ? "loop" : stage.value("agent", "");
    std::fprintf(stderr, "%-32s %-16s %-12s %9.2f\n", stage.value("id", "").c_str(), agent.c_str(), status.c_str(),
                 stage.value("seconds", 0.0));
  }
  std::fprintf(stderr, "run %s in %.2f s: %s\n", report.value("status", "").c_str(), report.value("seconds", 0.0),
               report.value("run_dir", "").c_str());
}

struct Prepared {
  Workflow workflow;
  std::vector<std::pair<std::string, std::string>> sets;
};

// Parses the workflow for a new run or a resumed one (which uses the copy saved in the run dir).
Result<Prepared> prepare_workflow(const Options& options, const std::string& run_dir, int* exit_code) {
  Prepared prepared;
  ParseOutcome parsed;
  if (!options.resume_dir.empty()) {
    RunStore store(options.resume_dir);
    Status opened = store.open_existing();
    if (!opened) {
      *exit_code = kExitInvalid;
      return opened;
    }
    auto run = store.read_json("run.json");
    auto text = read_file(fs::path(options.resume_dir) / "workflow.yaml");
    if (!run || !text) {
      *exit_code = kExitInvalid;
      return !run ? run.status() : text.status();
    }
    for (const auto& name : run->value("redacted_sets", Json::array())) {
      *exit_code = kExitInvalid;
      return Status(ErrorCode::kInvalidArgument,
                    "--set " + name.get<std::string>() + " held a secret, which run.json does not keep: this run " +
                        "cannot be resumed; start it again (pass secrets through api_key_env, not --set)");
    }
    for (const auto& pair : (*run)["sets"]) prepared.sets.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    std::string file = (*run)["workflow_file"].get<std::string>();
    if (!options.workflow.empty()) {
      auto given = read_file(options.workflow);
      if (!given || given.value() != text.value()) {
        *exit_code = kExitInvalid;
        return Status(ErrorCode::kInvalidArgument, options.workflow + " differs from the workflow the run in " +
                                                       options.resume_dir + " started with; resume without it");
      }
    }
    parsed = parse_workflow_text(text.value(), file, ParseOptions{prepared.sets, run_dir});
  } else {
    auto sets = parse_sets(options.sets);
    if (!sets) {
      *exit_code = kExitInvalid;
      return sets.status();
    }
    prepared.sets = sets.value();
    parsed = parse_workflow_file(options.workflow, ParseOptions{prepared.sets, run_dir});
  }
  if (!parsed.ok()) {
    *exit_code = print_diagnostics(parsed.diagnostics);
    return Status(ErrorCode::kValidation, "invalid workflow");
  }
  prepared.workflow = std::move(parsed.workflow);
  return prepared;
}

Json redacted_stages(const std::vector<StageSpec>& stages, const Workflow& workflow, const Registry& registry);

Json redacted_stage(const StageSpec& stage, const Workflow& workflow, const Registry& registry) {
  Json out = {{"id", stage.id}};
  Json inputs = Json::object();
  for (const auto& binding : stage.inputs) inputs[binding.name] = binding.ref.text();
  if (stage.is_loop()) {
    const LoopSpec& loop = *stage.loop;
    Json carry = Json::object(), next = Json::object();
    for (const auto& b : loop.carry) carry[b.name] = b.ref.text();
    for (const auto& b : loop.next) next[b.name] = b.ref.text();
    out["loop"] = {{"max_iterations", loop.max_iterations}, {"carry", carry}, {"next", next}};
    if (loop.until) out["loop"]["until"] = loop.until->text;
    if (loop.decide) out["loop"]["decide"] = {{"agent", loop.decide->agent}};
    out["stages"] = redacted_stages(loop.stages, workflow, registry);
    return out;
  }
  out["agent"] = stage.agent;
  out["inputs"] = inputs;
  const AgentFactory* factory = registry.find_agent(stage.agent);
  bool resolves = factory && factory->config.resolve(stage.with.value).is_ok();
  out["with"] = resolves ? redacted_with(stage.with, factory, workflow, registry) : Json::object();
  return out;
}

Json redacted_stages(const std::vector<StageSpec>& stages, const Workflow& workflow, const Registry& registry) {
  Json out = Json::array();
  for (const auto& stage : stages) out.push_back(redacted_stage(stage, workflow, registry));
  return out;
}

Json redacted_resources(const Workflow& workflow, const Registry& registry) {
  Json out = Json::object();
  for (const auto& resource : workflow.resources) {
    Json entry = {{"provider", resource.interface}};
    const Json redacted = redacted_resource(resource, registry);
    for (const auto& [key, value] : redacted.items()) entry[key] = value;
    out[resource.name] = std::move(entry);
  }
  return out;
}

int execute(const Options& options, Workflow workflow, const std::vector<std::pair<std::string, std::string>>& sets,
            const Registry& registry, const std::string& run_dir) {
  RunStore store(run_dir);
  bool resuming = !options.resume_dir.empty();
  Status opened = resuming ? store.open_existing() : store.create();
  if (!opened) {
    print_error(opened.to_string());
    return kExitInvalid;
  }
  // Secrets (docs/llm_backends.md, "Secrets"): never in a run file or the run log.
  const SecretRedactor redactor(workflow);
  secrets().set(redactor);
  store.set_scrub([redactor](std::string text) { return redactor.text(std::move(text)); });
  add_run_log(store.log_file());
  if (!resuming) {
    Json sets_json = Json::array();
    Json redacted_sets = Json::array();
    for (const auto& [key, value] : sets) {
      const bool secret = redactor.redacts_set(key, value);
      sets_json.push_back({key, secret ? std::string(kRedacted) : value});
      if (secret) redacted_sets.push_back(key);
    }
    Json run = {{"workflow_file", fs::absolute(workflow.file).string()},
                {"sets", sets_json},
                {"profagent_version", kSdkVersion}};
    if (!redacted_sets.empty()) run["redacted_sets"] = redacted_sets;
    Status saved = store.write_text("workflow.yaml", workflow.source_text);
    if (saved) saved = store.write_json("run.json", run);
    if (!saved) {
      print_error(saved.to_string());
      return kExitRunFailed;
    }
  }
  Status saved = store.write_json("resolved.json", {{"name", workflow.name},
                                                     {"vars", redactor.vars(workflow.vars)},
                                                     {"resources", redacted_resources(workflow, registry)},
                                                     {"stages", redacted_stages(workflow.stages, workflow, registry)}});
  if (!saved) log().warn("could not write resolved.json: {}", saved.to_string());

  log().info("run directory: {}", store.dir().string());
  install_interrupt_handler();
  Executor executor(workflow, registry, store);
  RunOutcome outcome = executor.run();
  // The artifacts' report sections (e.g. the profiler's top-layer table) are the run's result for a
  // person: stdout, so they can be piped; the stage summary stays on stderr.
  if (!outcome.report_sections.empty()) std::fputs(outcome.report_sections.c_str(), stdout);
  print_summary(outcome.report);
  switch (outcome.status) {
    case RunStatus::kCompleted: return kExitOk;
    case RunStatus::kInterrupted:
      std::cerr << "interrupted; resume with: profagent-run --resume " << store.dir().string() << "\n";
      return kExitInterrupted;
    case RunStatus::kFailed:
      print_error(outcome.error.to_string());
      return kExitRunFailed;
  }
  return kExitRunFailed;
}

int run_with_options(const Options& options) {
  if (options.version) {
    std::printf("profagent-run %s (plugin ABI %u.%u; %s)\n", kSdkVersion, kAbiMajor, kAbiMinor,
                PROFAGENT_BUILD_FINGERPRINT);
    return kExitOk;
  }
  Registry registry;
  PluginManager manager(registry);
  if (options.list_plugins || !options.describe.empty()) {
    load_plugins(manager, registry, options, {});
    return options.list_plugins ? list_plugins(registry) : describe(registry, options.describe);
  }
  if (options.workflow.empty() && options.resume_dir.empty()) {
    print_error("no workflow given (profagent-run WORKFLOW.yaml, or --help)");
    return kExitInvalid;
  }
  bool dry = options.validate || options.plan;
  if (dry && !options.resume_dir.empty()) {
    print_error("--validate and --plan do not combine with --resume");
    return kExitInvalid;
  }
  if (!options.resume_dir.empty() && (!options.sets.empty() || !options.output_dir.empty())) {
    print_error("--resume continues a run as it was started: --set and --output-dir do not apply");
    return kExitInvalid;
  }

  std::string run_dir = dry ? "${run.dir}" : options.resume_dir;
  int exit_code = kExitOk;
  // ${run.dir} needs the directory before parsing; the default one is named after the workflow,
  // so it is chosen after a first parse.
  if (!dry && run_dir.empty()) run_dir = options.output_dir;
  auto prepared = prepare_workflow(options, run_dir.empty() ? "${run.dir}" : run_dir, &exit_code);
  if (!prepared) {
    if (prepared.status().message() != "invalid workflow") print_error(prepared.status().to_string());
    return exit_code == kExitOk ? kExitInvalid : exit_code;
  }
  if (!dry && run_dir.empty()) {
    run_dir = default_run_dir(prepared->workflow);
    prepared = prepare_workflow(options, run_dir, &exit_code);
    if (!prepared) return exit_code == kExitOk ? kExitInvalid : exit_code;
  }
  Workflow& workflow = prepared->workflow;
  secrets().set(SecretRedactor(workflow));  // from here on, no log line or error shows a key

  if (!load_plugins(manager, registry, options, workflow.plugin_paths)) {
    std::cerr << "not running: fix or remove the refused plugin(s) above (see profagent-run --list-plugins)\n";
    return kExitPluginError;
  }
  auto diagnostics = validate_workflow(workflow, registry);
  if (!diagnostics.empty()) return print_diagnostics(diagnostics);
  if (options.validate) {
    std::printf("%s: valid (%zu stages)\n", workflow.file.c_str(), workflow.stages.size());
    return kExitOk;
  }
  if (options.plan) {
    std::printf("%s", format_plan(workflow, registry).c_str());
    return kExitOk;
  }
  // A backend that cannot be called (its key's variable unset) stops the run before any stage, and
  // before a run directory exists.
  Status ready = check_llm_backends_ready(workflow, registry);
  if (!ready) {
    print_error(ready.to_string());
    return kExitInvalid;
  }
  return execute(options, std::move(workflow), prepared->sets, registry, run_dir);
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"profagent-run: run a profagent workflow (profile, analyse, prune, quantize, evaluate)"};
  Options options;
  app.add_option("workflow", options.workflow, "the workflow YAML file");
  app.add_option("--set", options.sets, "override a workflow var: --set NAME=VALUE (repeatable)");
  app.add_option("--output-dir,-o", options.output_dir, "the run directory (default runs/<time>-<name>)");
  app.add_option("--plugin-path,-p", options.plugin_paths, "a plugin directory or library (repeatable)");
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--resume", options.resume_dir, "continue an interrupted or failed run in this directory");
  app.add_flag("--validate", options.validate, "check the workflow against the plugins; run nothing");
  app.add_flag("--plan", options.plan, "print the resolved stage graph; run nothing");
  app.add_flag("--list-plugins", options.list_plugins, "list the plugins on the search path");
  app.add_option("--describe", options.describe, "show an agent's or provider's ports and config schema");
  app.add_flag("--version", options.version, "print the version and build fingerprint");
  app.footer(
      "Exit codes: 0 ok, 1 run failed, 2 invalid workflow/config/usage, 3 plugin load error, 130 interrupted.\n"
      "Plugins are searched in --plugin-path, PROFAGENT_PLUGIN_PATH, the workflow's plugin_paths and the\n"
      "install directory, in that order: a plugin id found again later is shadowed (see --list-plugins).");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitInvalid;
  }
  setup_console_logger(spdlog::level::from_str(options.log_level));
  try {
    return run_with_options(options);
  } catch (const std::exception& e) {
    print_error(std::string("unexpected: ") + e.what());
    return kExitRunFailed;
  }
}

}  // namespace profagent::kernel

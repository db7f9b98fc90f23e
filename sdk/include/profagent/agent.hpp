#pragma once
// Agents are workflow stages. A factory declares what the stage consumes and produces (ports with
// artifact kinds) and its config schema; the kernel validates a workflow against that before it runs
// anything, then makes one Agent instance per stage execution and calls run() with a context.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "profagent/artifact.hpp"
#include "profagent/config_schema.hpp"
#include "profagent/provider.hpp"
#include "profagent/status.hpp"

namespace spdlog {
class logger;
}

PROFAGENT_ABI_NAMESPACE_BEGIN

struct PortSpec {
  std::string name;
  std::string kind;  // an artifact kind; for inputs also kinds::kAny
  std::string description;
  bool optional = false;  // an optional input may be left unconnected; an optional output may stay unset
};

class AgentContext;

// Times one phase of a stage's work from construction to destruction (or stop()) and records it on
// the context: `auto timer = context.phase("load");`. Phases show in the stage's entry of report.json
// and report.md, and in the log at debug level, so a reader sees where a stage's time went.
class PROFAGENT_SDK_API PhaseTimer {
 public:
  PhaseTimer(AgentContext& context, std::string name);
  ~PhaseTimer();
  PhaseTimer(PhaseTimer&& other) noexcept;
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;
  PhaseTimer& operator=(PhaseTimer&&) = delete;
  // Records the phase now (once); returns its seconds.
  double stop();

 private:
  AgentContext* context_;
  std::string name_;
  std::chrono::steady_clock::time_point start_;
};

// What a running agent sees of the kernel. Implemented by the kernel; plugins only call it.
class PROFAGENT_SDK_API AgentContext {
 public:
  virtual ~AgentContext();  // the key function, in the SDK

  virtual const std::string& stage_id() const = 0;  // e.g. "prune", or "refine/prune" inside a loop
  virtual int iteration() const = 0;                // loop iteration (1-based), 0 outside loops
  virtual const Config& config() const = 0;

  // The artifact connected to an input port; null for an unconnected optional port.
  virtual ArtifactPtr input(const std::string& port) const = 0;
  // Publishes an output. Kind must match the port's declared kind; each port is set once.
  virtual Status set_output(const std::string& port, ArtifactPtr artifact) = 0;

  // A directory private to this stage execution, for scratch and large files (kept in the run dir).
  virtual std::filesystem::path work_dir() const = 0;
  virtual std::filesystem::path run_dir() const = 0;

  // True once the user asked to stop (SIGINT). Long loops check it and return kCancelled.
  virtual bool cancelled() const = 0;
  // Shown on stderr, e.g. progress("layer", 3, 20). total <= 0 means unknown.
  virtual void progress(const std::string& what, long done, long total) = 0;

  // Records that phase `name` of this stage's work (e.g. "load", "warm-up", "timed forwards") took
  // `seconds`; a phase recorded again adds up, in the order first recorded. Agents use phase() below.
  virtual void record_phase(const std::string& name, double seconds) = 0;
  PhaseTimer phase(std::string name) { return PhaseTimer(*this, std::move(name)); }

  // Makes a provider of `interface` with id `provider_id`, its config validated by its schema.
  virtual Result<std::unique_ptr<Provider>> make_provider(const std::string& interface,
                                                          const std::string& provider_id,
                                                          const Json& config) = 0;

  spdlog::logger& log() const;

  // Convenience: the input as a concrete artifact type, or kNotFound / kValidation.
  template <class T>
  Result<std::shared_ptr<const T>> input_as(const std::string& port) const {
    ArtifactPtr any = input(port);
    if (!any) return Status(ErrorCode::kNotFound, "input port '" + port + "' is not connected");
    auto typed = std::dynamic_pointer_cast<const T>(any);
    if (!typed)
      return Status(ErrorCode::kValidation,
                    "input port '" + port + "' holds a '" + any->kind() + "' artifact of an unexpected type");
    return typed;
  }
  // Convenience: a provider as its C++ interface type.
  template <class T>
  Result<std::unique_ptr<T>> make_provider_as(const std::string& interface, const std::string& provider_id,
                                              const Json& config) {
    auto made = make_provider(interface, provider_id, config);
    if (!made) return std::move(made).take_status();
    T* typed = dynamic_cast<T*>(made.value().get());
    if (!typed)
      return Status(ErrorCode::kValidation,
                    "provider '" + provider_id + "' does not implement interface '" + interface + "'");
    made.value().release();
    return std::unique_ptr<T>(typed);
  }
};

class PROFAGENT_SDK_API Agent {
 public:
  virtual ~Agent();  // the key function, in the SDK

  // What the kernel calls (non-virtual, in the SDK): run(context), with anything it throws turned into
  // a Status — "agent 'AGENT_ID' threw: <what()>" (kRuntime; a StatusError keeps its code), e.g. a
  // Config getter's "config key 'ratio' is not set" — so no exception leaves the plugin through the
  // kernel. The kernel adds the stage and its location as context frames.
  Status execute(AgentContext& context, const std::string& agent_id) noexcept;

  // What an agent implements. Return a Status for errors; an exception is caught by execute().
  virtual Status run(AgentContext& context) = 0;
};

using AgentMaker = std::function<Result<std::unique_ptr<Agent>>(const Config& config)>;

struct PROFAGENT_SDK_API AgentFactory {
  std::string id;    // the name a workflow's `agent:` uses, e.g. "pruning"
  std::string role;  // what the stage does, e.g. "acquisition", "profiling", "analysis"
  std::string summary;
  std::vector<PortSpec> inputs;
  std::vector<PortSpec> outputs;
  ConfigSchema config;
  AgentMaker make;  // called by the kernel only through make_agent() below

  const PortSpec* find_input(const std::string& name) const;
  const PortSpec* find_output(const std::string& name) const;
};

// Calls factory.make(config) and turns anything it throws into a Status ("making agent 'ID' threw:
// ..."); a null agent from an ok Result is refused too. The kernel makes agents only through this.
PROFAGENT_SDK_API Result<std::unique_ptr<Agent>> make_agent(const AgentFactory& factory, const Config& config) noexcept;

PROFAGENT_ABI_NAMESPACE_END

#include "profagent/agent.hpp"

#include "profagent/log.hpp"
#include "profagent/plugin.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

// Out-of-line destructors anchor the vtables and typeinfo in the SDK library, so dynamic_cast
// between a plugin's objects and the kernel's view of them works across shared libraries.
AgentContext::~AgentContext() = default;
Agent::~Agent() = default;
Provider::~Provider() = default;

// The wrappers through which the kernel calls plugin code: nothing thrown there leaves them.
Status Agent::execute(AgentContext& context, const std::string& agent_id) noexcept {
  try {
    return run(context);
  } catch (...) {
    return status_of_current_exception("agent '" + agent_id + "' threw");
  }
}

Result<std::unique_ptr<Agent>> make_agent(const AgentFactory& factory, const Config& config) noexcept {
  try {
    if (!factory.make) return Status(ErrorCode::kInternal, "agent '" + factory.id + "' has no make function");
    auto made = factory.make(config);
    if (made && !made.value())
      return Status(ErrorCode::kInternal, "the factory of agent '" + factory.id + "' made a null agent");
    return made;
  } catch (...) {
    return status_of_current_exception("making agent '" + factory.id + "' threw");
  }
}

Result<std::unique_ptr<Provider>> make_provider(const ProviderFactory& factory, const Config& config) noexcept {
  try {
    if (!factory.make) return Status(ErrorCode::kInternal, "provider '" + factory.id + "' has no make function");
    auto made = factory.make(config);
    if (made && !made.value())
      return Status(ErrorCode::kInternal, "the factory of provider '" + factory.id + "' made a null provider");
    return made;
  } catch (...) {
    return status_of_current_exception("making provider '" + factory.id + "' threw");
  }
}

PhaseTimer::PhaseTimer(AgentContext& context, std::string name)
    : context_(&context), name_(std::move(name)), start_(std::chrono::steady_clock::now()) {}

PhaseTimer::PhaseTimer(PhaseTimer&& other) noexcept
    : context_(other.context_), name_(std::move(other.name_)), start_(other.start_) {
  other.context_ = nullptr;
}

PhaseTimer::~PhaseTimer() { stop(); }

double PhaseTimer::stop() {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (!context_) return seconds;
  AgentContext* context = context_;
  context_ = nullptr;
  try {
    context->record_phase(name_, seconds);
  } catch (...) {
    // A destructor must not throw; losing one timing line is better than terminating the run.
  }
  return seconds;
}

spdlog::logger& AgentContext::log() const { return profagent::log(); }

namespace {
const PortSpec* find_port(const std::vector<PortSpec>& ports, const std::string& name) {
  for (const auto& port : ports)
    if (port.name == name) return &port;
  return nullptr;
}
}  // namespace

const PortSpec* AgentFactory::find_input(const std::string& name) const { return find_port(inputs, name); }
const PortSpec* AgentFactory::find_output(const std::string& name) const { return find_port(outputs, name); }

void Registrar::add_agent(AgentFactory factory) { agents_.push_back(std::move(factory)); }
void Registrar::add_provider(ProviderFactory factory) { providers_.push_back(std::move(factory)); }
void Registrar::add_artifact_loader(const std::string& kind, ArtifactLoader loader) {
  loaders_.emplace_back(kind, std::move(loader));
}

PROFAGENT_ABI_NAMESPACE_END

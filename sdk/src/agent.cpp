#include "profagent/agent.hpp"

#include "profagent/log.hpp"
#include "profagent/plugin.hpp"

namespace profagent {

// Out-of-line destructors anchor the vtables and typeinfo in the SDK library, so dynamic_cast
// between a plugin's objects and the kernel's view of them works across shared libraries.
AgentContext::~AgentContext() = default;
Agent::~Agent() = default;
Provider::~Provider() = default;

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

}  // namespace profagent

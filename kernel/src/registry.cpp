#include "profagent/kernel/registry.hpp"

#include <set>

namespace profagent::kernel {

namespace {
std::string provider_key_text(const std::string& interface, const std::string& id) { return interface + "/" + id; }
}  // namespace

Status Registry::add_plugin(const PluginRecord& record, std::vector<AgentFactory> agents,
                            std::vector<ProviderFactory> providers) {
  // Check everything first so that a refused plugin leaves nothing behind.
  for (const auto& other : plugins_) {
    if (other.loaded && !record.id.empty() && other.id == record.id)
      return Status(ErrorCode::kPluginLoad, "duplicate plugin id '" + record.id + "': " + record.path +
                                                " and " + other.path);
  }
  std::set<std::string> seen;
  for (const auto& agent : agents) {
    if (agent.id.empty()) return Status(ErrorCode::kPluginLoad, "an agent factory has an empty id");
    if (!agent.make) return Status(ErrorCode::kPluginLoad, "agent '" + agent.id + "' has no make function");
    auto it = agents_.find(agent.id);
    if (it != agents_.end())
      return Status(ErrorCode::kPluginLoad, "duplicate agent id '" + agent.id + "': " + record.path + " and " +
                                                it->second.second);
    if (!seen.insert("agent:" + agent.id).second)
      return Status(ErrorCode::kPluginLoad, "duplicate agent id '" + agent.id + "' within " + record.path);
  }
  for (const auto& provider : providers) {
    if (provider.id.empty() || provider.interface.empty())
      return Status(ErrorCode::kPluginLoad, "a provider factory has an empty id or interface");
    if (!provider.make)
      return Status(ErrorCode::kPluginLoad, "provider '" + provider.id + "' has no make function");
    auto it = providers_.find({provider.interface, provider.id});
    std::string key = provider_key_text(provider.interface, provider.id);
    if (it != providers_.end())
      return Status(ErrorCode::kPluginLoad, "duplicate provider id '" + key + "': " + record.path + " and " +
                                                it->second.second);
    if (!seen.insert("provider:" + key).second)
      return Status(ErrorCode::kPluginLoad, "duplicate provider id '" + key + "' within " + record.path);
  }

  PluginRecord stored = record;
  stored.loaded = true;
  stored.refusal.clear();
  for (auto& agent : agents) {
    stored.roles.push_back("agent:" + agent.id);
    std::string id = agent.id;
    agents_.emplace(id, std::make_pair(std::move(agent), record.path));
  }
  for (auto& provider : providers) {
    stored.roles.push_back("provider:" + provider_key_text(provider.interface, provider.id));
    auto key = std::make_pair(provider.interface, provider.id);
    providers_.emplace(key, std::make_pair(std::move(provider), record.path));
  }
  plugins_.push_back(std::move(stored));
  return Status::ok();
}

void Registry::add_refused(PluginRecord record) {
  record.loaded = false;
  record.shadowed_by.clear();
  plugins_.push_back(std::move(record));
}

void Registry::add_shadowed(PluginRecord record) {
  record.loaded = false;
  record.refusal.clear();
  plugins_.push_back(std::move(record));
}

const AgentFactory* Registry::find_agent(const std::string& id) const {
  auto it = agents_.find(id);
  return it == agents_.end() ? nullptr : &it->second.first;
}

const ProviderFactory* Registry::find_provider(const std::string& interface, const std::string& id) const {
  auto it = providers_.find({interface, id});
  return it == providers_.end() ? nullptr : &it->second.first;
}

std::vector<const ProviderFactory*> Registry::providers_of(const std::string& interface) const {
  std::vector<const ProviderFactory*> out;
  for (const auto& [key, entry] : providers_)
    if (key.first == interface) out.push_back(&entry.first);
  return out;
}

std::vector<const PluginRecord*> Registry::refused() const {
  std::vector<const PluginRecord*> out;
  for (const auto& p : plugins_)
    if (!p.loaded && p.shadowed_by.empty()) out.push_back(&p);
  return out;
}

std::vector<const AgentFactory*> Registry::agents() const {
  std::vector<const AgentFactory*> out;
  for (const auto& [id, entry] : agents_) out.push_back(&entry.first);
  return out;
}

std::vector<const ProviderFactory*> Registry::providers() const {
  std::vector<const ProviderFactory*> out;
  for (const auto& [key, entry] : providers_) out.push_back(&entry.first);
  return out;
}

std::string Registry::origin_of_agent(const std::string& id) const {
  auto it = agents_.find(id);
  return it == agents_.end() ? std::string() : it->second.second;
}

}  // namespace profagent::kernel

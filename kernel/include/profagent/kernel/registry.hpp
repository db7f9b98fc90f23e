#pragma once
// What the loaded plugins provide: agent factories by id, provider factories by (interface, id),
// and a record of every plugin file seen, loaded or refused (for --list-plugins and exit code 3).
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/provider.hpp"

namespace profagent::kernel {

struct PluginRecord {
  std::string path;      // the library file
  std::string id;        // from the descriptor (empty if it could not be read)
  std::string version;
  std::string sdk_version;
  std::string fingerprint;
  bool loaded = false;
  std::string refusal;  // why it was refused, when !loaded (and not shadowed)
  // Set when a plugin of the same id was loaded from an earlier search path entry (that file): this
  // one is not loaded, and that is not an error (a fresh build on --plugin-path over an installed copy).
  std::string shadowed_by;
  std::vector<std::string> roles;  // e.g. "agent:pruning", "provider:llm/openai"
};

class Registry {
 public:
  // Adds one plugin's factories, all or nothing: a duplicate id anywhere refuses the whole plugin
  // with a message naming both files.
  Status add_plugin(const PluginRecord& record, std::vector<AgentFactory> agents,
                    std::vector<ProviderFactory> providers);
  void add_refused(PluginRecord record);
  void add_shadowed(PluginRecord record);  // record.shadowed_by set

  const AgentFactory* find_agent(const std::string& id) const;
  const ProviderFactory* find_provider(const std::string& interface, const std::string& id) const;
  std::vector<const ProviderFactory*> providers_of(const std::string& interface) const;

  const std::vector<PluginRecord>& plugins() const { return plugins_; }
  std::vector<const PluginRecord*> refused() const;  // shadowed ones are not refused
  std::vector<const AgentFactory*> agents() const;
  std::vector<const ProviderFactory*> providers() const;

  // The file that registered an agent / provider / plugin id (for messages).
  std::string origin_of_agent(const std::string& id) const;

 private:
  std::vector<PluginRecord> plugins_;
  std::map<std::string, std::pair<AgentFactory, std::string>> agents_;  // id -> (factory, file)
  std::map<std::pair<std::string, std::string>, std::pair<ProviderFactory, std::string>> providers_;
};

}  // namespace profagent::kernel

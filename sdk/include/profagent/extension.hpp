#pragma once
// Extension points: process-wide tables that plugins add named values to, for libraries that want to
// be extended without the kernel knowing what they hold (pruning rules, MAC-counting rules, ...).
//
// A *point* is a string owned by the library that reads it ("profagent.prune.rule"); each entry has a
// *name* unique within its point (an op symbol) and a type-erased value whose type the point's owner
// defines. Plugins do not call Registrar::add_extension for a point with a value of another type:
// the owner's typed wrapper does it (profagent::torch_tk::add_prune_rule, add_mac_rule).
//
// The kernel commits a plugin's entries only when the whole plugin was accepted; a (point, name) that
// another plugin file already added refuses the plugin, naming both files. Libraries are never
// unloaded, so a value (and the code its functions point into) lives as long as the process.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

struct Extension {
  std::string point;
  std::string name;
  std::shared_ptr<const void> value;
};

using ExtensionTable = std::map<std::string, std::shared_ptr<const void>>;

// The entries of one point, name → value (empty when none was added).
PROFAGENT_SDK_API ExtensionTable extensions(const std::string& point);
// Incremented by every commit that adds an entry: a reader that caches what it built from the table
// rebuilds it when the generation it saw is not the current one.
PROFAGENT_SDK_API std::uint64_t extensions_generation();
// The file (or other origin) that added (point, name); empty when the entry does not exist.
PROFAGENT_SDK_API std::string extension_origin(const std::string& point, const std::string& name);

// What the kernel does with an accepted plugin's entries. check_extensions refuses (kPluginLoad) an
// entry without point, name or value, a (point, name) given twice in `entries`, or one that another
// origin added before ("duplicate extension 'point/name': <origin> and <other origin>"); the same
// origin adding it again (a plugin file loaded by a second PluginManager) is accepted.
// add_extensions checks the same, then adds everything or nothing.
PROFAGENT_SDK_API Status check_extensions(const std::vector<Extension>& entries, const std::string& origin);
PROFAGENT_SDK_API Status add_extensions(const std::vector<Extension>& entries, const std::string& origin);

// For the owner of a point: the table it builds from its built-ins and the point's entries (e.g.
// PruneRules::registered()), built again when the generation changed since the last build. Every table
// built is kept, so a reference handed out stays valid for the life of the process (plugins are
// loaded a few times per process at most). Keep one instance per table, never destroyed:
//   static auto* cache = new ExtensionSnapshots<PruneRules>();
//   return cache->get([] { PruneRules rules = PruneRules::builtin(); ...; return rules; });
template <class T>
class ExtensionSnapshots {
 public:
  template <class Build>
  const T& get(Build&& build) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::uint64_t generation = extensions_generation();
    if (tables_.empty() || generation != generation_) {
      tables_.push_back(std::make_unique<const T>(build()));
      generation_ = generation;
    }
    return *tables_.back();
  }

 private:
  std::mutex mutex_;
  std::uint64_t generation_ = 0;
  std::vector<std::unique_ptr<const T>> tables_;
};

PROFAGENT_ABI_NAMESPACE_END

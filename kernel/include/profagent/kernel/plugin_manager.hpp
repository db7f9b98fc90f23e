#pragma once
// Finds plugin libraries on the search path and loads them with Boost.DLL. The descriptor is read
// and checked (ABI, fingerprint, entry point) before any plugin code runs; registration happens only
// then, and a plugin whose register function fails or throws leaves nothing registered. Libraries
// stay loaded for the life of the process, so objects they made never outlive their code.
#include <memory>
#include <string>
#include <vector>

#include "profagent/kernel/registry.hpp"

namespace profagent::kernel {

// The search path, highest precedence first (the CLI adds: --plugin-path flags, PROFAGENT_PLUGIN_PATH
// (colon-separated), the workflow's plugin_paths, the install dir). Each entry is a directory (scanned
// for lib*.so that export the descriptor symbol... see docs/plugins.md) or a single library file. A
// plugin id already loaded from an earlier entry shadows a later copy: the later one is recorded as
// shadowed (PluginRecord::shadowed_by), not registered and not refused. The same id twice within one
// entry is a duplicate, refused naming both files.
class PluginManager {
 public:
  explicit PluginManager(Registry& registry);
  ~PluginManager();

  void add_search_path(const std::string& path);
  const std::vector<std::string>& search_path() const { return search_path_; }

  // Loads every library on the search path not loaded yet. Refusals are recorded in the registry,
  // not returned: the caller decides (the CLI exits 3 when any plugin was refused).
  void load_all();
  // Loads one file; the record tells whether it was accepted. A file already seen (by canonical
  // path) is not loaded again: its first record is returned. A file loaded by name shadows nothing
  // and is never shadowed (an id loaded before is a duplicate). The reference is into
  // registry.plugins() and is invalidated by the next load.
  const PluginRecord& load_file(const std::string& path);

 private:
  static constexpr std::size_t kNoEntry = static_cast<std::size_t>(-1);
  const PluginRecord& load(const std::string& path, std::size_t entry);  // entry: index in search_path_
  struct Impl;
  Registry& registry_;
  std::vector<std::string> search_path_;
  std::unique_ptr<Impl> impl_;
};

// The directory profagent's own plugins are installed in (next to the executable: ../lib/profagent/plugins),
// also the build tree's plugin output directory when running from a build.
std::vector<std::string> default_plugin_dirs();

// The entries of PROFAGENT_PLUGIN_PATH (colon-separated, empty entries skipped); empty when unset.
std::vector<std::string> plugin_path_from_env();

// The kernel's own build fingerprint, the one every plugin's is compared with (for --list-plugins).
std::string kernel_build_fingerprint();

// Compares two build fingerprints ("compiler=...;cxxabi=...;torch=..."): empty when compatible,
// else why not, naming both values.
std::string fingerprint_mismatch(const std::string& kernel_fingerprint, const std::string& plugin_fingerprint);

}  // namespace profagent::kernel

#pragma once
// The artifacts of a run, immutable once published, keyed "scope/stage.port@iteration"
// ("acquire.model", "refine/prune.model@2"). Scopes resolve a workflow's "stage.port" references
// to keys: a loop body's scope sees its own stages, its `loop.*` values, then the enclosing scopes.
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "profagent/artifact.hpp"

namespace profagent::kernel {

class Blackboard {
 public:
  // Refuses to overwrite: an artifact is published once.
  Status put(const std::string& key, ArtifactPtr artifact);
  ArtifactPtr get(const std::string& key) const;
  const std::map<std::string, ArtifactPtr>& entries() const { return entries_; }

 private:
  std::map<std::string, ArtifactPtr> entries_;
};

class Scope {
 public:
  // Top level: no prefix, iteration 0.
  Scope() = default;
  // A loop body's scope for one iteration: its stage ids and the `loop.*` pseudo-stage.
  Scope(const Scope* parent, std::string loop_id, int iteration, std::set<std::string> stage_ids);

  // The blackboard key of stage.port as seen from this scope, or nullopt when no scope knows the stage.
  std::optional<std::string> key_of(const std::string& stage, const std::string& port) const;
  // The key a stage of this scope publishes its port under.
  std::string own_key(const std::string& stage, const std::string& port) const;
  // The run-directory path of a stage of this scope: "prune" at top level, "refine/002/prune" in
  // iteration 2 of loop refine.
  std::string stage_path(const std::string& stage) const { return dir_prefix_ + stage; }
  int iteration() const { return iteration_; }
  // "refine/" inside loop refine, "" at top level: stage ids shown to agents are prefix + id.
  const std::string& key_prefix() const { return prefix_; }
  void add_stage(const std::string& id) { stage_ids_.insert(id); }

 private:
  const Scope* parent_ = nullptr;
  std::string prefix_;      // "refine/", "outer@2/inner/"
  std::string dir_prefix_;  // "refine/002/"
  int iteration_ = 0;
  std::set<std::string> stage_ids_;
};

}  // namespace profagent::kernel

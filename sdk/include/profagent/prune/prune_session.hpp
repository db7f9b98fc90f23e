#pragma once
// The one pruning pipeline. A session measures what the original model computes once (its output
// shapes on the example inputs and, optionally, its static profile); each round then builds the
// dependency graph once, lets the caller choose units on it (by default choose_units with the
// round's options), applies them, saves and loads the result back, checks its outputs and counts it.
// prune() is a session with one default round; the pruning agent runs rounds of its own choosing
// (MAC-target search, plan checks) through the same code.
#include <torch/script.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "profagent/profile/static_profile.hpp"
#include "profagent/prune/prune_apply.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {

class PruneSession {
 public:
  // Chooses the units of one round on its graph. `options` are the round's, which the chooser may
  // change (e.g. the ratio a search settled on); the history records them as they are on return.
  using Chooser =
      std::function<Result<std::vector<GroupDecision>>(const DependencyGraph& graph, PruneOptions& options)>;

  // Runs `module` once on `inputs` (eval copy, no grad) for the expected output shapes; with
  // `profile`, counts its params and MACs. Errors (kRuntime) name the model and the forward's reason.
  static Result<std::unique_ptr<PruneSession>> open(const torch::jit::Module& module,
                                                    std::vector<torch::jit::IValue> inputs,
                                                    DependencyOptions graph_options, bool profile = true);

  Result<PruneResult> round(PruneOptions options, const Chooser& choose = {}) const;

  // The original's static profile; null when the session was opened without `profile`.
  const StaticProfile* before() const { return before_ ? &*before_ : nullptr; }
  const std::vector<torch::jit::IValue>& inputs() const { return inputs_; }

 private:
  PruneSession(const torch::jit::Module& module, std::vector<torch::jit::IValue> inputs,
               DependencyOptions graph_options)
      : module_(module), inputs_(std::move(inputs)), graph_options_(std::move(graph_options)) {}

  const torch::jit::Module& module_;
  std::vector<torch::jit::IValue> inputs_;
  DependencyOptions graph_options_;
  std::vector<PruneShape> expected_;
  std::optional<StaticProfile> before_;
};

}  // namespace profagent::torch_tk

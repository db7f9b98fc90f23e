#pragma once
// Structured pruning on top of the dependency graph (prune_graph.hpp): choosing which units of each
// group to remove (ratios from a plan or one global ratio, round_to, minimum width, ignored layers,
// scores from an importance criterion), applying every edit of the chosen units (parameter and buffer
// slices, graph ints, module attributes), and the output module: a new root class whose forward is
// the edited inlined graph, checked by a save/load round trip. The decisions form a history (JSON)
// that, replayed on the original model, rebuilds the same pruned model.
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"
#include "profagent/torch/importance.hpp"
#include "profagent/prune/prune_graph.hpp"

namespace profagent::torch_tk {

// Scores of a group's units ([units], higher = keep); see ImportanceCriterion::score.
using PruneCriterion = std::function<Result<torch::Tensor>(const ImportanceGroup&, GroupReduction)>;

struct PruneOptions {
  double ratio = 0.0;                          // share of each group's units to remove
  std::map<std::string, double> layer_ratios;  // plan: group name (module path) or key → ratio
  std::int64_t round_to = 1;                   // kept units: a multiple of this (capped at the group's size)
  std::int64_t min_width = 1;                  // kept units: at least this (and at least 1)
  std::vector<std::string> ignored_layers;     // group names or keys never pruned
  bool ignore_input_layer = true;              // the first conv / patch embedding (reads the model input)
  GroupReduction reduction = GroupReduction::kMean;
  PruneCriterion criterion;  // empty: L1 norm of the producers' weights
  // History replay: group key → removed unit ids. When set, ratios and scores are not used.
  std::optional<std::map<std::string, std::vector<std::int64_t>>> removal;
  bool verify = true;  // run the saved-and-loaded output once and compare output shapes
  bool profile = true;  // params and MACs before and after (static_profile)
  Json to_json() const;
};

// What was removed from one group: unit ids are indices in the group's producer dim
// (PruneGroup::unit_ids), so a history reads "channels 3, 17 of layer1.0.conv1.weight".
struct GroupDecision {
  std::string key;
  std::string name;
  std::int64_t units = 0;
  std::vector<std::int64_t> removed;
};

struct PruneHistory {
  std::string model;
  Json options = Json::object();
  std::vector<GroupDecision> groups;

  Json to_json() const;
  static Result<PruneHistory> from_json(const Json& json);
  // The options that replay this history on the original model.
  PruneOptions replay_options() const;
};

struct PruneResult {
  torch::jit::Module module;  // the pruned model, as loaded back from its serialised form
  PruneHistory history;
  std::vector<std::string> warnings;     // from the dependency graph
  std::vector<FrozenNote> frozen;        // why units could not be pruned
  std::int64_t groups = 0;               // prunable groups found
  std::int64_t pruned_groups = 0;        // groups that lost units
  std::int64_t params_before = 0, params_after = 0;
  std::int64_t macs_before = 0, macs_after = 0;
  double graph_seconds = 0.0;  // building the dependency graph
  double prune_seconds = 0.0;  // choosing, applying and building the output module (save/load included)
  Json summary() const;
};

// The members of a group as importance criteria read them (tensors from the graph's working copy).
ImportanceGroup to_importance_group(const DependencyGraph& graph, const PruneGroup& group);

// Which units each group loses. Errors (kNotFound) name a plan layer or history key that matches no
// prunable group, with why it is frozen when it is.
Result<std::vector<GroupDecision>> choose_units(const DependencyGraph& graph, const PruneOptions& options);

// Applies the decisions to the graph's working copy and returns the output module (not yet
// serialised). Consumes the graph: it must not be used afterwards.
Result<torch::jit::Module> apply_pruning(DependencyGraph& graph, const std::vector<GroupDecision>& decisions);

// Serialises and loads back (a method that already ran keeps its plan: a fresh load is what users
// get), and when `inputs` are given runs it and checks the output shapes against `expected`.
Result<torch::jit::Module> round_trip(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                                      const std::vector<PruneShape>& expected, const std::string& model_name);

// The output shapes of a forward (every tensor of the output, see torch/model_io.hpp).
std::vector<PruneShape> output_shapes(const c10::IValue& output);

// build_dependency_graph + choose_units + apply_pruning + round_trip (+ static profiles): one round of
// a PruneSession (prune_session.hpp).
Result<PruneResult> prune(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                          const PruneOptions& options, const DependencyOptions& graph_options = {});

}  // namespace profagent::torch_tk

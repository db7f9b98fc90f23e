#pragma once
// The checks that decide whether a prune is right, shared by the pruning tests and the mutation test
// that proves they catch a wrong one (test_prune_mutation.cpp). They read a pruned model only through
// its parameters and buffers by module path and its outputs, never its graph:
//  - zero-weight exactness: units whose producer rows, biases and norm scales/shifts are zero
//    contribute nothing, so removing them must leave the outputs unchanged (relative difference);
//  - slices: every tensor of the pruned model is the original's at the kept indices the engine
//    reports (its decisions: removed unit ids per group, mapped to indices by the group's members).
// Include after torch_doctest.hpp.
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "prune_test_support.hpp"
#include "relative_difference.hpp"

namespace profagent::test {

// Indices of `member`'s dim owned by the removed units of `group`.
inline std::vector<std::int64_t> removed_indices(const torch_tk::PruneGroup& group, const torch_tk::GroupMember& member,
                                                 const std::vector<std::int64_t>& removed_units) {
  std::vector<std::int64_t> indices;
  for (std::int64_t id : removed_units) {
    const auto at = std::find(group.unit_ids.begin(), group.unit_ids.end(), id) - group.unit_ids.begin();
    if (at >= static_cast<std::ptrdiff_t>(group.unit_ids.size())) FAIL("unit " << id << " is not in group " << group.name);
    const auto& unit = member.unit_indices[static_cast<std::size_t>(at)];
    indices.insert(indices.end(), unit.begin(), unit.end());
  }
  std::sort(indices.begin(), indices.end());
  indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
  return indices;
}

inline const torch_tk::PruneGroup& decided_group(const torch_tk::DependencyGraph& graph,
                                                 const torch_tk::GroupDecision& decision) {
  const torch_tk::PruneGroup* group = graph.find_group(decision.key);
  REQUIRE_MESSAGE(group != nullptr, "the decisions name group " << decision.key << ", which the graph lacks");
  return *group;
}

inline std::map<std::string, torch::Tensor> named_tensors(const torch::jit::Module& module) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& entry : module.named_parameters()) tensors[entry.name] = entry.value;
  for (const auto& entry : module.named_buffers()) tensors[entry.name] = entry.value;
  return tensors;
}

// A copy of `module` where the units the decisions remove produce zeros: their producer rows,
// biases and norm scales and shifts are zero.
inline torch::jit::Module zero_units(const torch::jit::Module& module, const torch_tk::DependencyGraph& graph,
                                     const std::vector<torch_tk::GroupDecision>& decisions) {
  torch::jit::Module copy = module.deepcopy();
  std::map<std::string, torch::Tensor> params = named_tensors(copy);
  torch::NoGradGuard no_grad;
  for (const torch_tk::GroupDecision& decision : decisions) {
    const torch_tk::PruneGroup& group = decided_group(graph, decision);
    for (const torch_tk::GroupMember& member : group.members) {
      if (member.role != "producer" && member.role != "bias" && member.role != "norm") continue;
      const std::vector<std::int64_t> indices = removed_indices(group, member, decision.removed);
      if (!indices.empty()) params.at(member.param).index_fill_(member.dim, torch::tensor(indices, torch::kLong), 0.0);
    }
  }
  return copy;
}

// Kept indices per (tensor name, dim) of the original: every dim some group's member lost indices in.
using KeptIndices = std::map<std::string, std::map<std::int64_t, std::vector<std::int64_t>>>;

inline KeptIndices kept_indices(const torch::jit::Module& original, const torch_tk::DependencyGraph& graph,
                                const std::vector<torch_tk::GroupDecision>& decisions) {
  std::map<std::string, std::map<std::int64_t, std::set<std::int64_t>>> removed;
  for (const torch_tk::GroupDecision& decision : decisions) {
    const torch_tk::PruneGroup& group = decided_group(graph, decision);
    for (const torch_tk::GroupMember& member : group.members) {
      for (std::int64_t index : removed_indices(group, member, decision.removed))
        removed[member.param][member.dim].insert(index);
    }
  }
  const auto tensors = named_tensors(original);
  KeptIndices kept;
  for (const auto& [name, dims] : removed) {
    const auto found = tensors.find(name);
    REQUIRE_MESSAGE(found != tensors.end(), "a group's member " << name << " is no tensor of the original");
    for (const auto& [dim, gone] : dims) {
      auto& indices = kept[name][dim];
      for (std::int64_t i = 0; i < found->second.size(dim); ++i)
        if (gone.count(i) == 0) indices.push_back(i);
    }
  }
  return kept;
}

// `tensor` at the given indices of each listed dim.
inline torch::Tensor slice_of(const torch::Tensor& tensor, const std::map<std::int64_t, std::vector<std::int64_t>>& dims) {
  torch::Tensor sliced = tensor;
  for (const auto& [dim, indices] : dims) sliced = sliced.index_select(dim, torch::tensor(indices, torch::kLong));
  return sliced;
}

// The tensors of `pruned` that are not the original's at the kept indices (name and why); empty when
// every one is. A tensor the original lacks is a mismatch too.
inline std::vector<std::string> slice_mismatches(const torch::jit::Module& pruned, const torch::jit::Module& original,
                                                 const KeptIndices& kept) {
  const auto before = named_tensors(original);
  std::vector<std::string> mismatches;
  for (const auto& [name, tensor] : named_tensors(pruned)) {
    const auto found = before.find(name);
    if (found == before.end()) {
      mismatches.push_back(name + ": not a tensor of the original");
      continue;
    }
    const auto dims = kept.find(name);
    const torch::Tensor expected = dims == kept.end() ? found->second : slice_of(found->second, dims->second);
    if (expected.sizes() != tensor.sizes()) {
      std::ostringstream why;
      why << name << ": shape " << tensor.sizes() << ", expected " << expected.sizes();
      mismatches.push_back(why.str());
    } else if (!torch::equal(expected, tensor)) {
      std::ostringstream why;
      why << name << ": " << relative_difference(tensor, expected);
      mismatches.push_back(why.str());
    }
  }
  return mismatches;
}

// Zero-weight replay: units chosen by `choose` (ratios or a plan, L1) are zeroed in a copy, which the
// engine then prunes with the same decisions; the zeroed and the pruned model must agree. It REQUIREs
// that units were removed (a replay that removes nothing compares a model with itself).
struct ZeroWeightReplay {
  Difference difference;  // pruned outputs vs the zeroed model's
  std::int64_t removed_units = 0;
  std::int64_t params_before = 0, params_after = 0;
};

inline std::int64_t param_count(const torch::jit::Module& module) {
  std::int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

inline ZeroWeightReplay zero_weight_replay(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                                           const torch_tk::PruneOptions& choose,
                                           const torch_tk::DependencyOptions& graph_options = {}) {
  auto graph = graph_of(module, inputs, graph_options);
  auto decisions = torch_tk::choose_units(*graph, choose);
  REQUIRE_MESSAGE(decisions.is_ok(), decisions.status().to_string());
  ZeroWeightReplay replay;
  std::map<std::string, std::vector<std::int64_t>> removal;
  for (const auto& decision : *decisions) {
    replay.removed_units += static_cast<std::int64_t>(decision.removed.size());
    removal[decision.key] = decision.removed;
  }
  REQUIRE_MESSAGE(replay.removed_units > 0, "the zero-weight replay chose no unit to remove");
  torch::jit::Module zeroed = zero_units(module, *graph, *decisions);
  torch_tk::PruneOptions options;
  options.removal = removal;
  options.profile = false;
  auto pruned = torch_tk::prune(zeroed, inputs, options, graph_options);
  REQUIRE_MESSAGE(pruned.is_ok(), pruned.status().to_string());
  replay.params_before = param_count(zeroed);
  replay.params_after = param_count(pruned->module);
  REQUIRE_MESSAGE(replay.params_after < replay.params_before,
                  "the replay removed " << replay.removed_units << " units but no parameter (" << replay.params_before
                                        << " → " << replay.params_after << ")");
  replay.difference = relative_difference(forward_tensor(pruned->module, inputs), forward_tensor(zeroed, inputs));
  return replay;
}

inline ZeroWeightReplay zero_weight_replay(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                                           double ratio) {
  torch_tk::PruneOptions choose;
  choose.ratio = ratio;
  choose.ignore_input_layer = false;
  // Zeroed units still count in a LayerNorm's mean and variance (ConvNeXt's residual streams), so
  // removing them is exact only for groups without one: those are left out of the replay.
  auto graph = graph_of(module, inputs);
  for (const torch_tk::PruneGroup& group : graph->groups()) {
    for (const torch_tk::GroupMember& member : group.members) {
      if (member.module_kind == "layer_norm") {
        choose.ignored_layers.push_back(group.key);
        break;
      }
    }
  }
  return zero_weight_replay(module, inputs, choose);
}

}  // namespace profagent::test

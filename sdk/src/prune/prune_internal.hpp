#pragma once
// The state of one dependency analysis (prune_analysis.cpp), shared by prune_graph.cpp (building it),
// prune_record.cpp (shapes), prune_rule_context.cpp (what rules do to it), prune_groups.cpp (groups)
// and prune_apply.cpp (edits). Not installed.
#include <torch/csrc/jit/ir/ir.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "profagent/status.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/prune/prune_graph.hpp"

namespace profagent::torch_tk {

struct SlotInfo {
  const torch::jit::Value* value = nullptr;
  std::int64_t dim = 0;
  std::int64_t width = 0;
  std::int64_t base = 0;  // id of atom 0
};

// An integer of the graph that must follow a slot's width.
struct IntEditSpec {
  torch::jit::Node* node = nullptr;  // the node that uses the int (or the int[])
  std::size_t input = 0;
  std::int64_t element = -1;  // -1: the input is an int; else the element of an int[] input
  std::int64_t slot = -1;
  std::int64_t numerator = 1;
  std::int64_t denominator = 1;
  std::int64_t old_value = 0;
  std::string attr_module;  // set when the int is a module attribute read by prim::GetAttr
  std::string attr_name;
  bool pin = false;  // keep old_value (RuleContext::pin_int) instead of following the slot's width
};

struct PairHash {
  std::size_t operator()(const std::pair<const torch::jit::Value*, std::int64_t>& key) const {
    return std::hash<const void*>()(key.first) * 31 + static_cast<std::size_t>(key.second);
  }
};

class PruneAnalysis {
 public:
  // ---- Inputs ----
  std::string model_name;
  torch::jit::Module module;                 // the working deep copy, eval
  std::shared_ptr<torch::jit::Graph> graph;  // its forward, inlined and specialised
  // The tagged nodes of the working copy's own per-instance methods (prune_module_types.hpp): how an
  // edit of `graph` is made in the code of the module it came from. Empty when the copy could not get
  // types of its own: the pruned model is then one inlined forward (`inline_reason` says why).
  std::vector<torch::jit::Node*> origins;
  std::vector<std::string> written_out_attention;  // paths of nn.MultiheadAttention written out
  std::string inline_reason;
  const PruneRules* rules = nullptr;
  const ModuleRules* module_rules = nullptr;

  // ---- Facts from the recording run ----
  std::unordered_map<const torch::jit::Value*, PruneShape> shapes;
  std::unordered_set<const torch::jit::Value*> varying;  // shapes that differed between runs of a loop
  std::unordered_set<const torch::jit::Block*> executed_blocks;
  std::unordered_map<const torch::jit::Value*, ParamRef> params;      // GetAttr output → parameter
  std::map<std::string, std::vector<const torch::jit::Value*>> param_values;  // name → GetAttr outputs

  // ---- Slots and atoms (union-find) ----
  std::vector<SlotInfo> slots;
  std::unordered_map<std::pair<const torch::jit::Value*, std::int64_t>, std::int64_t, PairHash> slot_index;
  std::unordered_multimap<const torch::jit::Value*, std::int64_t> slots_of_value;
  std::vector<std::int64_t> parent;
  std::vector<char> frozen;          // per atom, read at the root after finish()
  std::vector<char> touches_param;   // per root: a parameter's slot is in the class
  std::unordered_map<std::int64_t, int> freeze_reason;  // atom → index in reasons
  std::vector<std::string> reasons;
  std::unordered_map<std::string, int> reason_index;
  std::vector<std::pair<const torch::jit::Value*, int>> value_freezes;

  std::vector<IntEditSpec> int_edits;
  // (param name, dim) → (role, module kind)
  std::map<std::pair<std::string, std::int64_t>, std::pair<std::string, std::string>> roles;
  std::vector<std::string> warnings;
  std::set<std::string> warning_set;
  std::vector<PruneGroup> groups;
  std::vector<std::vector<std::int64_t>> group_unit_roots;  // per group, per unit: its root atom
  std::unordered_set<const torch::jit::Node*> reads_input;  // nodes reading a graph input directly
  std::vector<FrozenNote> frozen_notes;
  double seconds = 0.0;

  // ---- Operations ----
  std::int64_t find(std::int64_t atom);
  void merge(std::int64_t a, std::int64_t b);
  // The slot of (value, dim), created with the value's width; -1 when the width is unknown.
  std::int64_t slot(const torch::jit::Value* value, std::int64_t dim);
  std::optional<PruneShape> shape(const torch::jit::Value* value) const;
  int reason(const std::string& text);
  void freeze_atom(std::int64_t atom, int reason_id);
  void warn(const std::string& message);
  std::string layer_of(const torch::jit::Node* node) const;
  std::string where(const torch::jit::Node* node) const;
  bool executed(const torch::jit::Node* node) const;
};

// Shapes of every tensor value for `inputs` (prune_record.cpp): records into analysis.shapes and
// analysis.executed_blocks. The graph is left as it was.
Status record_shapes(PruneAnalysis& analysis, const std::vector<torch::jit::IValue>& inputs);

// Once every rule has run (prune_groups.cpp): applies the value-level freezes, then fills
// analysis.groups, group_unit_roots and frozen_notes. `param_order`: parameters in graph order.
void build_groups(PruneAnalysis& analysis, const std::vector<std::string>& param_order);

// A module-attribute rule's new size of dim `dim` of tensor attribute `attr`; nullopt when the tensor
// was not pruned or has fewer dims (prune_rules.cpp).
std::optional<std::int64_t> new_dim(const ModuleEdit& edit, const std::string& attr, std::size_t dim);

}  // namespace profagent::torch_tk

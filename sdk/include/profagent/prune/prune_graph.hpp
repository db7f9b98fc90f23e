#pragma once
// The dependency graph of structured pruning, built from the inlined TorchScript IR of the module that
// is edited (docs/pruning.md).
//
// Vocabulary: a *slot* is one dimension of one tensor value of the graph, `(value, dim)`, of a known
// width W; it has W *atoms* (its indices). Rules, one per op symbol, unite atoms that must be removed
// together (the output channel c of a conv and row c of its weight; both sides of a residual add; the
// H·W features that channel c becomes after a flatten) and freeze atoms they cannot map. A *unit* is
// a class of united atoms (one removable channel, hidden unit, head_dim index ...); a *group* is the
// prunable units that touch the same set of slots, named after the module of its first producer
// parameter (`layer1.0.conv1`). Rules also declare *int edits*: graph integers that must follow a
// slot's new width (the `groups` of a depthwise conv, an element of a view's size list).
//
// Rules are a registry keyed by op symbol. A plugin adds rules for ops the built-ins lack from its
// register function (add_prune_rule, add_module_attribute_rule below): every graph built without
// explicit rules uses them (PruneRules::registered()). Code that builds graphs itself may also copy a
// registry and set or replace rules for one graph (DependencyOptions::rules). A source file of the
// SDK adds a family of built-in rules with PROFAGENT_PRUNE_RULES without touching this header or the
// other families (see prune_rules_conv.cpp).
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "profagent/plugin.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {

using PruneShape = std::vector<std::int64_t>;

// One dimension of one value; dims are normalised to >= 0 by the context.
struct SlotRef {
  const torch::jit::Value* value = nullptr;
  std::int64_t dim = 0;
};

// A parameter or buffer reached by a prim::GetAttr chain from the module input.
struct ParamRef {
  std::string name;         // "layer1.0.conv1.weight"
  std::string module_path;  // "layer1.0.conv1" ("" for the root)
  std::string attr;         // "weight"
  bool is_buffer = false;
  torch::Tensor tensor;
};

// Roles of parameter dims, spelled like ImportanceMember::role (importance.hpp).
namespace prune_role {
constexpr const char* kProducer = "producer";  // output dim of a conv/linear weight
constexpr const char* kConsumer = "consumer";  // input dim of a conv/linear weight
constexpr const char* kNorm = "norm";          // scale of a batch/layer/group norm
constexpr const char* kBias = "bias";          // conv/linear bias, norm shift
constexpr const char* kBuffer = "buffer";      // running statistics
constexpr const char* kOther = "other";        // class token, position embedding, ...
}  // namespace prune_role

class PruneAnalysis;  // defined in the SDK's sources

// What a rule sees of one node and what it can declare. Rules only run on nodes that executed for
// the example input, so every tensor value a rule reads has a shape (else shape() is nullopt: freeze).
class RuleContext {
 public:
  RuleContext(PruneAnalysis& analysis, torch::jit::Node* node) : analysis_(analysis), node_(node) {}

  torch::jit::Node* node() const { return node_; }
  std::string op() const { return node_->kind().toQualString(); }
  // "aten::view in layer 'layer1.0' (%x.3)": for warnings and errors.
  std::string where() const;
  const torch::jit::Value* input(std::size_t i) const { return node_->input(i); }
  const torch::jit::Value* output(std::size_t i) const { return node_->output(i); }
  std::size_t num_inputs() const { return node_->inputs().size(); }
  std::size_t num_outputs() const { return node_->outputs().size(); }

  std::optional<PruneShape> shape(const torch::jit::Value* value) const;
  std::optional<PruneShape> input_shape(std::size_t i) const;
  std::optional<PruneShape> output_shape(std::size_t i) const;
  bool is_tensor(const torch::jit::Value* value) const;
  // The parameter or buffer `value` is (a prim::GetAttr of the module tree), else nullptr.
  const ParamRef* param(const torch::jit::Value* value) const;

  // Constant inputs (prim::Constant, or prim::ListConstruct of constants); nullopt when not constant.
  std::optional<std::int64_t> int_input(std::size_t i) const;
  // Also an int[] module attribute read by prim::GetAttr (its value in the working copy).
  std::optional<std::vector<std::int64_t>> int_list_input(std::size_t i) const;
  std::optional<bool> bool_input(std::size_t i) const;
  // An int input that is a constant or an int attribute of the module tree read by prim::GetAttr
  // (scripted code passes `self.num_heads`); nullopt otherwise.
  std::optional<std::int64_t> int_value(std::size_t i) const;
  bool is_none(std::size_t i) const;
  // The tensors of a Tensor[] input as they are when this node runs (prim::ListConstruct followed by
  // aten::append, as scripted DenseNet builds its features); nullopt when the list cannot be followed.
  std::optional<std::vector<const torch::jit::Value*>> list_elements(std::size_t i) const;
  // The tensors of a Tensor[] output (aten::split, chunk, unbind), one per element in order, found
  // at its prim::ListUnpack or constant aten::__getitem__ uses; nullopt when they cannot be followed.
  std::optional<std::vector<const torch::jit::Value*>> list_output_elements(std::size_t i) const;

  // ---- Mappings. Slots are created on first use with the width of the value's shape. ----
  // Index i of `a` is index i of `b` for every i; widths must match, else both are frozen.
  void identity(SlotRef a, SlotRef b);
  // Index a_start + k of `a` is index b_start + k of `b`, k < count.
  void map_range(SlotRef a, std::int64_t a_start, SlotRef b, std::int64_t b_start, std::int64_t count);
  // One pair of indices.
  void unite(SlotRef a, std::int64_t a_index, SlotRef b, std::int64_t b_index);
  // Every dim of `a` to the same dim of `b` (elementwise ops between equal shapes).
  void identity_all_dims(const torch::jit::Value* a, const torch::jit::Value* b);
  // NumPy broadcasting: each non-broadcast dim of `input` is the aligned dim of `output`.
  void broadcast_to(const torch::jit::Value* input, const torch::jit::Value* output);
  // Never remove these indices (or the whole slot), with the reason shown in warnings.
  void freeze(SlotRef slot, const std::string& reason);
  void freeze_index(SlotRef slot, std::int64_t index, const std::string& reason);
  // Every dim of a value, including slots other rules create later.
  void freeze_value(const torch::jit::Value* value, const std::string& reason);
  // Every tensor input and output (list elements included): what a missing rule does.
  void freeze_all(const std::string& reason);
  // Whether a slot's atoms already reach a parameter dim (used to choose which dim a reshape maps).
  bool reaches_parameter(SlotRef slot);

  // ---- Parameter roles: the role of a parameter's dim, for importance scores. A slot of a view of a
  // parameter (aten::t, transpose, permute of a GetAttr) is followed back to the parameter. ----
  void role(SlotRef slot, const std::string& role, const std::string& module_kind);

  // ---- Int edits: integer input `input` of this node (element `element` of an int[] input, or -1
  // for an int input) must become new_width(source) * numerator / denominator. A constant is
  // replaced at this use, an int attribute read by prim::GetAttr is replaced and set on the module;
  // an int computed from tensor sizes is replaced by the new width when `source` changes;
  // anything else freezes `source`. ----
  void int_edit(std::size_t input, std::int64_t element, SlotRef source, std::int64_t numerator = 1,
                std::int64_t denominator = 1);
  // Every use of the int `value` (computed by this graph, e.g. C // self.num_heads) becomes the
  // constant `keep` when `source` changes, in the code of the module it came from: an int that must
  // not move with an attribute the pruning rewrites (head_dim when num_heads changes). False (nothing
  // pinned) where a use is not an int input that can be replaced.
  bool pin_int(const torch::jit::Value* value, std::int64_t keep, SlotRef source);

  // A warning shown with the analysis (e.g. a rule that froze something it could not map).
  void warn(const std::string& message);

 private:
  // The working copy's value of a module attribute read by prim::GetAttr from `self`; nullopt otherwise.
  std::optional<c10::IValue> module_attribute(const torch::jit::Value* value) const;

  PruneAnalysis& analysis_;
  torch::jit::Node* node_;
};

using PruneRule = std::function<void(RuleContext&)>;

class PruneRules {
 public:
  // The built-in rules (every family registered with PROFAGENT_PRUNE_RULES). To change them for one
  // graph, copy (`PruneRules mine = PruneRules::registered();`), set, and pass the copy in
  // DependencyOptions; to extend them for every graph, a plugin calls add_prune_rule.
  static const PruneRules& builtin();
  // builtin() plus every rule that loaded plugins added with add_prune_rule (built again when a plugin
  // adds one; a reference stays valid for the process): what a graph uses when
  // DependencyOptions::rules is null.
  static const PruneRules& registered();

  void set(const std::string& op, PruneRule rule) { rules_[op] = std::move(rule); }
  // "aten::relu_" falls back to "aten::relu".
  const PruneRule* find(const std::string& op) const;
  std::size_t size() const { return rules_.size(); }

  // Used by PROFAGENT_PRUNE_RULES: families are added to builtin() in name order.
  static bool register_family(const std::string& family, void (*add)(PruneRules&));
  // Nodes inside a module of class `class_name` (base name) are analysed only where their op is `op`,
  // whose rule declares every coupling of the module (nn.MultiheadAttention: the fused kernel); the
  // module's other code (its slow path, taken with autograd) reads only shapes and the attributes
  // that the rule's int edits set, and is neither mapped nor frozen.
  void analyse_module_by(const std::string& class_name, const std::string& op) { module_ops_[class_name] = op; }
  const std::string* module_op(const std::string& class_name) const {
    auto found = module_ops_.find(class_name);
    return found == module_ops_.end() ? nullptr : &found->second;
  }

 private:
  std::unordered_map<std::string, PruneRule> rules_;
  std::map<std::string, std::string> module_ops_;
};

// Adds a family of built-in rules from one source file of the SDK:
//   namespace { void add_conv_rules(PruneRules& rules) { rules.set("aten::conv2d", ...); } }
//   PROFAGENT_PRUNE_RULES(conv, add_conv_rules)
#define PROFAGENT_PRUNE_RULES(family, function)                                               \
  namespace {                                                                                 \
  [[maybe_unused]] const bool profagent_prune_rules_##family =                                \
      ::profagent::torch_tk::PruneRules::register_family(#family, &function);                 \
  }

// Module attributes that must follow the new shapes of a module's parameters (Linear.in_features,
// nn.MultiheadAttention.embed_dim ...): read in untaken branches or by Python code. A rule is keyed by
// the module class's base name ("Linear", "MultiheadAttention"); it gets the instance and the new
// shapes of its direct parameters and buffers, and sets the int attributes and class constants that
// exist (Conv2d.in_channels is a class constant in scripted torchvision; every instance of a pruned
// model has a class type of its own, so changing it changes that instance alone).
struct ModuleEdit {
  torch::jit::Module module;
  std::string path;
  std::map<std::string, PruneShape> old_shapes;  // attr → shape before
  std::map<std::string, PruneShape> new_shapes;  // attr → shape after
  // The instance has a class type of its own (the pruned model keeps its modules): its class
  // constants may change. False when the model's types could not be copied (then they are shared).
  bool own_type = false;
  // Sets an int attribute, or an int class constant of an own type (Conv2d.out_channels in scripted
  // torchvision); false when the type has neither.
  bool set_int(const std::string& attr, std::int64_t value) const;
  // The int attribute or int class constant `attr`.
  std::optional<std::int64_t> get_int(const std::string& attr) const;
};
using ModuleRule = std::function<void(const ModuleEdit&)>;

class ModuleRules {
 public:
  static const ModuleRules& builtin();
  // builtin() plus the rules plugins added with add_module_attribute_rule.
  static const ModuleRules& registered();
  void set(const std::string& class_name, ModuleRule rule) { rules_[class_name] = std::move(rule); }
  const ModuleRule* find(const std::string& class_name) const;

 private:
  std::unordered_map<std::string, ModuleRule> rules_;
};

// One parameter dim of a group, with the indices each unit owns in it (what importance criteria
// score: see to_importance_group in prune_apply.hpp).
struct GroupMember {
  std::string param;  // "layer1.0.conv1.weight"
  std::int64_t dim = 0;
  std::string role;         // prune_role::k*
  std::string module_kind;  // "conv", "linear", "batch_norm", ...
  std::vector<std::vector<std::int64_t>> unit_indices;
};

struct PruneGroup {
  std::string name;  // module path of the first producer parameter: the layer a plan names
  std::string key;   // stable id for history replay: "<producer param>:<dim>@<first index>"
  std::string producer;       // the first producer parameter ("layer1.0.conv1.weight")
  std::int64_t producer_dim = 0;
  std::int64_t units = 0;
  std::vector<GroupMember> members;
  // Per unit, its smallest index in the producer's dim: how a history names the unit.
  std::vector<std::int64_t> unit_ids;
  bool reads_graph_input = false;  // a producer of the group reads the model's input (the stem)
};

struct DependencyOptions {
  std::string model_name;                 // for messages; empty: the module's class name
  const PruneRules* rules = nullptr;      // nullptr: PruneRules::registered()
  const ModuleRules* module_rules = nullptr;  // nullptr: ModuleRules::registered()
  // nn.MultiheadAttention's fused self-attention is written out in the working copy (and the pruned
  // model), so whole heads are pruned and the residual (embedding) width stays. False keeps the fused
  // kernel, whose heads can only go with the residual channels they read: embedding pruning.
  bool write_out_attention = true;
};

// ---- Rules that plugins add (docs/plugins.md, "Adding rules"), from their register function. ----
// Extension points (extension.hpp) whose values are a PruneRule / ModuleRule.
constexpr const char* kPruneRulePoint = "profagent.prune.rule";
constexpr const char* kModuleRulePoint = "profagent.prune.module_rule";
// Adds the dependency rule of `op` ("aten::softshrink", "myops::scale"; its in-place form "op_" falls
// back to it). A plugin may add rules for ops the built-ins lack, not replace a built-in rule: an op
// that builtin() knows (in-place fallback included), an unqualified op name or an empty rule throws
// std::invalid_argument, which refuses the plugin with that message. Two plugins adding the same op
// are refused by the kernel like duplicate ids. The rule runs for every graph built after the plugin
// was loaded without explicit DependencyOptions::rules.
void add_prune_rule(Registrar& registrar, const std::string& op, PruneRule rule);
// Adds the module-attribute rule of a module class (its base name, e.g. "ScaleChannels"), on the same
// terms: a class that ModuleRules::builtin() knows throws.
void add_module_attribute_rule(Registrar& registrar, const std::string& class_name, ModuleRule rule);

// A frozen slot that mattered: a unit that would otherwise have been prunable, with why.
struct FrozenNote {
  std::string reason;
  std::int64_t units = 0;  // prunable-looking units it froze
};

class DependencyGraph {
 public:
  ~DependencyGraph();
  DependencyGraph(const DependencyGraph&) = delete;
  DependencyGraph& operator=(const DependencyGraph&) = delete;

  const std::vector<PruneGroup>& groups() const;
  const PruneGroup* find_group(const std::string& name_or_key) const;
  // Ops without a rule, nodes that could not be mapped, ... (each once, with op and layer).
  const std::vector<std::string>& warnings() const;
  // Why units were frozen, most frozen first.
  std::vector<FrozenNote> frozen_notes() const;
  // The working copy (eval) whose parameters an apply slices, and its inlined, specialised forward.
  const torch::jit::Module& module() const;
  std::shared_ptr<torch::jit::Graph> graph() const;
  const std::string& model_name() const;
  double seconds() const;  // time to build

  PruneAnalysis& analysis() { return *analysis_; }
  const PruneAnalysis& analysis() const { return *analysis_; }

 private:
  friend Result<std::unique_ptr<DependencyGraph>> build_dependency_graph(
      const torch::jit::Module&, const std::vector<torch::jit::IValue>&, const DependencyOptions&);
  explicit DependencyGraph(std::unique_ptr<PruneAnalysis> analysis);
  std::unique_ptr<PruneAnalysis> analysis_;
};

// Deep-copies `module` (eval), inlines its forward, specialises branches on module attributes (not
// `training`), runs the example inputs once to get every value's shape, and applies the rules.
// Errors (kRuntime) name the model and the forward's own message. The original is left untouched.
Result<std::unique_ptr<DependencyGraph>> build_dependency_graph(const torch::jit::Module& module,
                                                                const std::vector<torch::jit::IValue>& inputs,
                                                                const DependencyOptions& options = {});

}  // namespace profagent::torch_tk

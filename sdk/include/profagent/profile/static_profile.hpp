#pragma once
// The static profile of a TorchScript model: parameters, multiply-accumulates (MACs), "other ops"
// (norms, activations, elementwise, pooling) and the bytes each layer writes, per layer and per op
// kind, for the path one example input actually takes.
//
// How: LibTorch's C++ tracer runs the loaded module once (eval, no grad) and records the flat graph of
// the ops executed, with complete shapes on every value and parameters reached by prim::GetAttr chains
// from the module (`self.layer1.0.conv1.weight`). Control flow is resolved by running it, so a
// scripted ViT's fused attention path is counted once, not next to the slow path it never takes.
//
// Which layer an op belongs to (a layer is a module path, e.g. `layer3.4.conv2`):
//   1. an op that reads parameters or buffers belongs to the module that owns them (the longest common
//      prefix when it reads from several, e.g. a fused attention reads `attn` and `attn.out_proj`);
//   2. any other op (relu, residual add, attention matmul, softmax, pooling) belongs to the module whose
//      forward executed it, recorded while tracing from the interpreter's call frames;
//   3. a fused op may hand part of its MACs to the module of one of its parameters (the
//      out-projection of aten::_native_multi_head_attention goes to `out_proj`).
// Rule 2 needs LibTorch's RecordFunction inputs, which a debug build of this library cannot read
// from a release LibTorch (the class layout differs with NDEBUG); such a build falls back to the
// layer of the op's first input's producer and says so in `attribution`.
//
// Counting rules are a registry keyed by op symbol (`aten::linear`), one small function each. A plugin
// adds rules for ops the built-ins lack from its register function (add_mac_rule below): every profile
// made without explicit rules uses them (OpRules::registered()); code that profiles may also pass a
// copy with rules set or replaced (StaticProfileOptions::rules).
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/plugin.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {

// The layer name of the root module, whose module path is "".
constexpr const char* kRootLayer = "(root)";

using Shape = std::vector<std::int64_t>;

// What the profiler knows about the graph's values; counting rules reach it through OpView.
class ValueFacts {
 public:
  virtual ~ValueFacts() = default;
  // The complete shape of a tensor value (a parameter's own shape for a prim::GetAttr value).
  virtual std::optional<Shape> shape(const torch::jit::Value* value) const = 0;
  // True when the value is a parameter or buffer, possibly seen through views (t, transpose, ...).
  virtual bool reads_parameter(const torch::jit::Value* value) const = 0;
};

// One op of the traced graph as a counting rule sees it.
class OpView {
 public:
  OpView(const torch::jit::Node& node, const ValueFacts& facts) : node_(node), facts_(facts) {}

  const torch::jit::Node& node() const { return node_; }
  std::string op() const { return node_.kind().toQualString(); }
  std::size_t num_inputs() const { return node_.inputs().size(); }
  std::optional<Shape> input_shape(std::size_t i) const;
  std::optional<Shape> output_shape(std::size_t i) const;
  // The shapes of a Tensor[] input (aten::cat, aten::einsum), one per element.
  std::vector<std::optional<Shape>> list_input_shapes(std::size_t i) const;
  bool input_reads_parameter(std::size_t i) const;
  // Constant inputs (prim::Constant, or prim::ListConstruct of constants); nullopt when not constant.
  std::optional<std::int64_t> int_input(std::size_t i) const;
  std::optional<std::vector<std::int64_t>> int_list_input(std::size_t i) const;
  std::optional<bool> bool_input(std::size_t i) const;
  std::optional<std::string> string_input(std::size_t i) const;

 private:
  const torch::jit::Node& node_;
  const ValueFacts& facts_;
};

// MACs of one kind produced by an op. A fused op has several: aten::_native_multi_head_attention
// gives "linear" for its projections and "attention" for QK^T and AV.
struct MacShare {
  std::string kind;
  std::int64_t macs = 0;
  // -1: the op's own layer; else the layer owning the parameter read by this input.
  int owner_input = -1;
};

struct OpCount {
  std::vector<MacShare> macs;
  std::int64_t other_elements = 0;  // elements produced by a non-MAC op (norm, activation, ...)
  std::string kind;                 // overrides the rule's kind (a matmul with a weight is "linear")
  // Output 0's shape computed from the inputs when the traced type has none; later ops see it.
  std::optional<Shape> inferred_output;
};

enum class OpCategory {
  kCompute,  // counted in MACs (conv, linear, matmul, attention)
  kOther,    // counted in other ops: norms, activations, softmax, elementwise, pooling, reductions
  kData,     // moves or views data (reshape, cat, pad, index): no MACs, no other ops
};

using OpCounter = std::function<Result<OpCount>(const OpView&)>;

struct OpRule {
  std::string kind;  // "conv", "linear", "norm", "activation", "elementwise", "data", ...
  OpCategory category = OpCategory::kOther;
  OpCounter count;       // empty: other ops count their output's elements, data ops nothing
  bool is_view = false;  // writes no new tensor, so it adds no activation bytes
};

class OpRules {
 public:
  // The built-in rules. To change them for one profile, copy (`OpRules mine = OpRules::registered();`),
  // set, and pass the copy in StaticProfileOptions; to extend them everywhere, a plugin calls add_mac_rule.
  static const OpRules& builtin();
  // builtin() plus every rule that loaded plugins added with add_mac_rule (built again when a plugin
  // adds one; a reference stays valid for the process): what a profile uses when
  // StaticProfileOptions::rules is null.
  static const OpRules& registered();

  void set(const std::string& op, OpRule rule) { rules_[op] = std::move(rule); }
  // The rule for "aten::relu_" falls back to "aten::relu" (in-place variants count alike).
  const OpRule* find(const std::string& op) const;
  std::size_t size() const { return rules_.size(); }

 private:
  std::unordered_map<std::string, OpRule> rules_;
};

struct KindStats {
  std::int64_t ops = 0;  // ops of this kind (shares of fused ops add MACs, not ops)
  std::int64_t macs = 0;
  std::int64_t elements = 0;  // other-op elements
  std::int64_t activation_bytes = 0;
};

struct LayerProfile {
  std::string name;         // module path, kRootLayer for the root
  std::string kind;         // the op kind with the most MACs, else the most elements; "unused" without ops
  std::int64_t params = 0;  // parameters this module owns directly, each counted once
  std::int64_t param_bytes = 0;
  std::int64_t buffer_bytes = 0;  // buffers it owns (BatchNorm running statistics, ...)
  std::int64_t macs = 0;
  std::int64_t ops = 0;
  std::int64_t other_ops = 0;
  std::int64_t other_elements = 0;
  std::int64_t activation_bytes = 0;  // bytes of the tensors its ops write (views excluded)
  std::map<std::string, KindStats> kinds;
  Json to_json() const;
};

struct StaticProfile {
  std::string model;
  std::vector<Shape> input_shapes;
  // sum(p.numel()) over unique parameters, plus the weights packed inside quantized ops' parameters
  // (quantized::conv2d, linear, linear_dynamic...: their unpacked weight and bias elements)
  std::int64_t params = 0;
  std::int64_t param_bytes = 0;  // each at its own element size: a packed int8 weight 1 byte an element
  std::int64_t buffer_bytes = 0;
  std::int64_t macs = 0;
  std::int64_t ops = 0;
  std::int64_t other_ops = 0;
  std::int64_t other_elements = 0;
  std::int64_t activation_bytes = 0;
  // How params and param_bytes were counted: "parameters", or "parameters + packed weights (...)"
  // when the model has quantized ops' packed weights.
  std::string param_counting = "parameters";
  std::vector<LayerProfile> layers;  // in execution order, then layers whose ops never ran
  std::map<std::string, KindStats> kinds;
  std::map<std::string, std::int64_t> unrecognized_ops;  // op symbol → count (counted as "other")
  std::int64_t inferred_shapes = 0;  // ops whose output shape was computed from their inputs
  std::string attribution;           // "module scopes" or the fallback's name
  double seconds = 0.0;              // time to trace and count

  const LayerProfile* find(const std::string& name) const;
  // {"model", "input_shapes", "total": {...}, "kinds": {...}, "layers": [...], ...}
  Json to_json() const;
};

// The flat graph of one forward, with the module path whose forward executed each node.
struct TracedModel {
  std::string model;
  torch::jit::Module module;                 // the traced copy: shares the original's tensors
  std::shared_ptr<torch::jit::Graph> graph;  // input 0 is the module
  std::unordered_map<const torch::jit::Node*, std::string> scopes;  // "" for the root
  bool has_scopes = false;
  std::vector<Shape> input_shapes;
  double seconds = 0.0;
};

struct StaticProfileOptions {
  std::string model_name;          // for messages; empty: the module's class name
  const OpRules* rules = nullptr;  // nullptr: OpRules::registered()
};

// ---- Rules that plugins add (docs/plugins.md, "Adding rules"), from their register function. ----
// The extension point (extension.hpp) whose values are an OpRule.
constexpr const char* kMacRulePoint = "profagent.profile.mac_rule";
// Adds the counting rule of `op` ("aten::softshrink", "myops::scale"; its in-place form "op_" falls
// back to it). A plugin may add rules for ops the built-ins lack, not replace a built-in rule: an op
// that OpRules::builtin() knows (in-place fallback included), an unqualified op name, a rule without
// kind, or a kCompute rule without a count function throws std::invalid_argument, which refuses the
// plugin with that message. Two plugins adding the same op are refused by the kernel like duplicate
// ids. The rule counts in every static profile made after the plugin was loaded without explicit
// StaticProfileOptions::rules (the profiler's, the evaluation's and the pruner's MAC counts).
void add_mac_rule(Registrar& registrar, const std::string& op, OpRule rule);

// Runs one forward of a copy of `module` (eval, no grad; the original is left as it was) under the
// tracer. Errors (kRuntime) name the model and the forward's own message.
Result<TracedModel> trace_for_profile(const torch::jit::Module& module,
                                      const std::vector<torch::jit::IValue>& inputs,
                                      const std::string& model_name = "");

// Counts a traced graph. Errors (kUnsupported) name the model, op and layer a MAC rule cannot count.
Result<StaticProfile> profile_traced(const TracedModel& traced, const StaticProfileOptions& options = {});

// trace_for_profile + profile_traced.
Result<StaticProfile> static_profile(const torch::jit::Module& module,
                                     const std::vector<torch::jit::IValue>& inputs,
                                     const StaticProfileOptions& options = {});

}  // namespace profagent::torch_tk

// Which ops of a folded graph become quantized ops, and which values calibration must observe.
#include <torch/csrc/jit/ir/constants.h>

#include <unordered_set>

#include "static_internal.hpp"

namespace profagent::quantize {

Value* QuantPattern::output() const {
  return relu != nullptr ? relu->output() : anchor->output();
}

std::vector<Value*> QuantPattern::activation_inputs() const {
  if (kind == "add") return {anchor->input(0), anchor->input(1)};
  return {anchor->input(0)};
}

std::optional<at::Tensor> constant_tensor(const Value* value) {
  if (value->node()->kind() != c10::prim::Constant) return std::nullopt;
  auto ivalue = torch::jit::toIValue(value);
  if (!ivalue || !ivalue->isTensor() || !ivalue->toTensor().defined()) return std::nullopt;
  return ivalue->toTensor();
}

bool passes_quantized_through(const Node* node) {
  // Each has a quantized CPU kernel that keeps its input's scale and zero point.
  static const std::unordered_set<std::string> kOps = {"aten::max_pool2d", "aten::adaptive_avg_pool2d",
                                                       "aten::avg_pool2d", "aten::flatten",
                                                       "aten::reshape",    "aten::view",
                                                       "aten::relu",       "aten::contiguous",
                                                       "aten::dropout",    "aten::hardtanh",
                                                       "aten::relu6"};
  return node->blocks().empty() && node->outputs().size() == 1 && !node->inputs().empty() &&
         kOps.count(node->kind().toQualString()) > 0 && node->output()->type()->cast<c10::TensorType>();
}

namespace {

bool patterns_all_constant(const Node* node, std::size_t first, std::size_t last) {
  for (std::size_t i = first; i <= last && i < node->inputs().size(); ++i) {
    if (!torch::jit::toIValue(node->input(i))) return false;
  }
  return true;
}

// conv2d(input, weight, bias?, stride, padding, dilation, groups), padding given as ints (not "same").
bool patterns_weighted_conv(const Node* node) {
  if (node->kind() != c10::aten::conv2d || node->inputs().size() != 7) return false;
  auto weight = constant_tensor(node->input(1));
  if (!weight || weight->dim() != 4 || !weight->is_floating_point()) return false;
  if (!patterns_all_constant(node, 2, 6)) return false;
  return torch::jit::toIValue(node->input(4))->isIntList();
}

// linear(input, weight, bias?)
bool patterns_weighted_linear(const Node* node) {
  if (node->kind() != c10::aten::linear || node->inputs().size() != 3) return false;
  auto weight = constant_tensor(node->input(1));
  return weight && weight->dim() == 2 && weight->is_floating_point() && patterns_all_constant(node, 2, 2);
}

// The aten::relu that is the only reader of `node`'s output, or nullptr.
Node* patterns_sole_relu(const Node* node) {
  const auto& uses = node->output()->uses();
  if (uses.size() != 1 || uses[0].user->kind() != c10::aten::relu) return nullptr;
  return uses[0].user;
}

}  // namespace

std::vector<Node*> weighted_candidates(Graph& graph) {
  std::vector<Node*> nodes;
  for (Node* node : graph.nodes()) {
    if (patterns_weighted_conv(node) || patterns_weighted_linear(node)) nodes.push_back(node);
  }
  return nodes;
}

std::vector<QuantPattern> plan_patterns(Graph& graph, const std::set<const Node*>& anchors,
                                        const std::set<const Node*>& excluded_adds) {
  std::vector<QuantPattern> patterns;
  std::unordered_set<const Value*> quantized;  // values that will exist as quantized tensors
  std::unordered_set<const Node*> fused;       // relus taken by a pattern
  for (Node* node : graph.nodes()) {
    if (fused.count(node)) continue;
    QuantPattern pattern;
    pattern.anchor = node;
    if (anchors.count(node)) {
      pattern.kind = node->kind() == c10::aten::conv2d ? "conv2d" : "linear";
    } else if (node->kind() == c10::aten::add && node->inputs().size() == 3 && !excluded_adds.count(node) &&
               quantized.count(node->input(0)) && quantized.count(node->input(1))) {
      auto alpha = torch::jit::toIValue(node->input(2));
      if (!alpha || !alpha->isInt() || alpha->toInt() != 1) continue;
      pattern.kind = "add";
    } else {
      if (passes_quantized_through(node) && quantized.count(node->input(0))) quantized.insert(node->output());
      continue;
    }
    pattern.relu = patterns_sole_relu(node);
    if (pattern.relu != nullptr) fused.insert(pattern.relu);
    quantized.insert(pattern.output());
    patterns.push_back(pattern);
  }
  return patterns;
}

std::vector<Value*> values_to_observe(const std::vector<QuantPattern>& patterns) {
  std::vector<Value*> values;
  std::unordered_set<const Value*> seen;
  auto add = [&](Value* value) {
    if (seen.insert(value).second) values.push_back(value);
  };
  for (const QuantPattern& pattern : patterns) {
    for (Value* input : pattern.activation_inputs()) add(input);
    add(pattern.output());
  }
  return values;
}

}  // namespace profagent::quantize

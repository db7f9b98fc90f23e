// The rule API of the static profiler: what a counter sees of an op (OpView), the rule tables
// (OpRules) and the rules plugins add (add_mac_rule).
#include <torch/csrc/jit/ir/constants.h>

#include <memory>
#include <stdexcept>

#include "mac_counting.hpp"
#include "op_rule_table.hpp"
#include "profagent/torch/ir_constants.hpp"

namespace profagent::torch_tk {

using torch::jit::Node;
using torch::jit::Value;

// ---------------------------------------------------------------------------------------------------
// OpView

std::optional<Shape> OpView::input_shape(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return facts_.shape(node_.input(i));
}

std::optional<Shape> OpView::output_shape(std::size_t i) const {
  if (i >= node_.outputs().size()) return std::nullopt;
  return facts_.shape(node_.output(i));
}

std::vector<std::optional<Shape>> OpView::list_input_shapes(std::size_t i) const {
  std::vector<std::optional<Shape>> shapes;
  if (i >= node_.inputs().size()) return shapes;
  const Node* producer = node_.input(i)->node();
  if (producer->kind() != c10::prim::ListConstruct) return shapes;
  for (const Value* element : producer->inputs()) shapes.push_back(facts_.shape(element));
  return shapes;
}

bool OpView::input_reads_parameter(std::size_t i) const {
  return i < node_.inputs().size() && facts_.reads_parameter(node_.input(i));
}

std::optional<std::int64_t> OpView::int_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_int(node_.input(i));
}

std::optional<std::vector<std::int64_t>> OpView::int_list_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_int_list(node_.input(i));
}

std::optional<bool> OpView::bool_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_bool(node_.input(i));
}

std::optional<std::string> OpView::string_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_string(node_.input(i));
}

// ---------------------------------------------------------------------------------------------------
// OpRules

const OpRules& OpRules::builtin() {
  static const OpRules rules = make_builtin_rules();
  return rules;
}

const OpRules& OpRules::registered() {
  static auto* cache = new ExtensionSnapshots<OpRules>();
  return cache->get([] { return with_plugin_rules<OpRule>(builtin(), kMacRulePoint); });
}

void add_mac_rule(Registrar& registrar, const std::string& op, OpRule rule) {
  const std::string what = "add_mac_rule(" + op + "): ";
  check_plugin_op_symbol(what, op);
  if (rule.kind.empty()) throw std::invalid_argument(what + "the rule has no kind");
  if (rule.category == OpCategory::kCompute && !rule.count)
    throw std::invalid_argument(what + "a kCompute rule needs a count function (it is what gives the MACs)");
  if (OpRules::builtin().find(op) != nullptr)
    throw std::invalid_argument(what + "the op has a built-in counting rule; a plugin may add rules for ops the "
                                       "built-ins lack, not replace one (to replace it for one profile, pass a "
                                       "copy of OpRules::registered() with the rule set in StaticProfileOptions::rules)");
  registrar.add_extension(kMacRulePoint, op, std::make_shared<const OpRule>(std::move(rule)));
}

const OpRule* OpRules::find(const std::string& op) const { return find_op_rule(rules_, op); }

}  // namespace profagent::torch_tk

#pragma once
// Op-keyed rule tables, shared by the MAC-counting rules (OpRules) and the pruning rules (PruneRules,
// ModuleRules): filling by op list, the in-place fallback, plugins' rules, a plugin op's check.
// Header-only and private: profagent_profile and profagent_prune include it from here.
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "profagent/extension.hpp"

namespace profagent::torch_tk {

// `ops`: op names separated by spaces; a name without a namespace is an aten op ("conv2d").
template <class Rules, class Rule>
void set_op_rules(Rules& rules, const std::string& ops, const Rule& rule) {
  std::istringstream names(ops);
  std::string name;
  while (names >> name) rules.set(name.find("::") == std::string::npos ? "aten::" + name : name, rule);
}

// The rule for `op` in `rules` (a map keyed by op symbol); "aten::relu_" falls back to "aten::relu"
// (in-place variants behave alike). nullptr when neither has one.
template <class Map>
const typename Map::mapped_type* find_op_rule(const Map& rules, const std::string& op) {
  auto found = rules.find(op);
  if (found != rules.end()) return &found->second;
  if (!op.empty() && op.back() == '_') {
    found = rules.find(op.substr(0, op.size() - 1));
    if (found != rules.end()) return &found->second;
  }
  return nullptr;
}

// `builtin` plus the rules loaded plugins added at extension point `point`, whose values are `Rule`s.
template <class Rule, class Rules>
Rules with_plugin_rules(const Rules& builtin, const char* point) {
  Rules rules = builtin;
  for (const auto& [name, value] : extensions(point)) rules.set(name, *std::static_pointer_cast<const Rule>(value));
  return rules;
}

// What a plugin's add_*_rule(op) refuses first: an op that is no qualified symbol. `what` prefixes the
// message ("add_mac_rule(aten::foo): ").
inline void check_plugin_op_symbol(const std::string& what, const std::string& op) {
  if (op.find("::") == std::string::npos || op.size() < 4)
    throw std::invalid_argument(what + "not a qualified op symbol (e.g. aten::softshrink, myops::scale)");
}

}  // namespace profagent::torch_tk

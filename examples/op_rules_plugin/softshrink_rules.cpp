// Rules for aten::softshrink (F.softshrink: x - λ·sign(x) where |x| > λ, else 0), an op that none of
// profagent's built-in rules know. Without them, the dependency graph freezes every channel that goes
// through softshrink (the conv before it cannot be pruned) and the static profile lists it as an
// unrecognized op with no MACs. The plugin adds:
//   - a pruning rule: softshrink is elementwise, so index i of every dim of its input is index i of the
//     same dim of its output (channel c in is channel c out);
//   - a MAC-counting rule: one multiply-add per output element, of kind "shrink".
// Both are used by every agent that builds a dependency graph or a static profile without rules of its
// own (pruning, profiler, evaluation) once this plugin is loaded.
#include <cstdint>

#include <profagent/plugin.hpp>
#include <profagent/profile/static_profile.hpp>
#include <profagent/prune/prune_graph.hpp>

namespace tk = profagent::torch_tk;

namespace {

void prune_softshrink(tk::RuleContext& c) {
  if (!c.is_tensor(c.output(0))) return;
  c.identity_all_dims(c.input(0), c.output(0));
}

profagent::Result<tk::OpCount> count_softshrink(const tk::OpView& op) {
  auto shape = op.output_shape(0);
  if (!shape) return profagent::Status(profagent::ErrorCode::kUnsupported, "aten::softshrink without an output shape");
  std::int64_t elements = 1;
  for (std::int64_t d : *shape) elements *= d;
  tk::OpCount count;
  count.macs.push_back({"shrink", elements, /*owner_input=*/-1});
  return count;
}

void register_softshrink_rules(profagent::Registrar& registrar) {
  // Both throw (which refuses the plugin) if a built-in rule for the op exists: plugins add rules for
  // ops the built-ins lack, they do not replace them.
  tk::add_prune_rule(registrar, "aten::softshrink", prune_softshrink);
  tk::add_mac_rule(registrar, "aten::softshrink", tk::OpRule{"shrink", tk::OpCategory::kCompute, count_softshrink});
}

}  // namespace

PROFAGENT_PLUGIN("softshrink_rules", "1.0.0", register_softshrink_rules);

// The pruning rule tables: built-in families (PROFAGENT_PRUNE_RULES), module-attribute rules, and the
// rules plugins add (extension points kPruneRulePoint, kModuleRulePoint).
#include "profagent/prune/prune_attention.hpp"
#include <map>
#include <memory>
#include <stdexcept>

#include "../profile/op_rule_table.hpp"
#include "prune_internal.hpp"

namespace profagent::torch_tk {

// ---------------------------------------------------------------------------------------------------
// Built-in tables

namespace {

std::map<std::string, void (*)(PruneRules&)>& rule_families() {
  static std::map<std::string, void (*)(PruneRules&)> families;
  return families;
}

}  // namespace

bool PruneRules::register_family(const std::string& family, void (*add)(PruneRules&)) {
  rule_families()[family] = add;
  return true;
}

const PruneRules& PruneRules::builtin() {
  static const PruneRules rules = [] {
    PruneRules all;
    for (const auto& [family, add] : rule_families()) add(all);
    return all;
  }();
  return rules;
}

const PruneRule* PruneRules::find(const std::string& op) const { return find_op_rule(rules_, op); }

bool ModuleEdit::set_int(const std::string& attr, std::int64_t value) const {
  auto type = module.type();
  if (auto slot = type->findAttributeSlot(attr)) {
    if (type->getAttribute(*slot)->kind() != c10::TypeKind::IntType) return false;
    module._ivalue()->setSlot(*slot, c10::IValue(value));
    return true;
  }
  auto constant = type->findConstant(attr);
  if (!own_type || !constant || !constant->isInt()) return false;
  // No object holds constants: replacing one on a type that only this instance has is safe.
  type->unsafeRemoveConstant(attr);
  type->addConstant(attr, c10::IValue(value));
  return true;
}

std::optional<std::int64_t> ModuleEdit::get_int(const std::string& attr) const {
  auto type = module.type();
  if (auto slot = type->findAttributeSlot(attr)) {
    c10::IValue value = module._ivalue()->getSlot(*slot);
    if (!value.isInt()) return std::nullopt;
    return value.toInt();
  }
  auto constant = type->findConstant(attr);
  if (!constant || !constant->isInt()) return std::nullopt;
  return constant->toInt();
}

std::optional<std::int64_t> new_dim(const ModuleEdit& edit, const std::string& attr, std::size_t dim) {
  auto found = edit.new_shapes.find(attr);
  if (found == edit.new_shapes.end() || found->second.size() <= dim) return std::nullopt;
  return found->second[dim];
}

namespace {

ModuleRules make_builtin_module_rules() {
  ModuleRules rules;
  // Conv: weight [out, in / groups, k...]; groups follows a depthwise conv's channels.
  ModuleRule conv = [](const ModuleEdit& edit) {
    auto out = new_dim(edit, "weight", 0);
    auto in_per_group = new_dim(edit, "weight", 1);
    if (!out || !in_per_group) return;
    const std::int64_t old_groups = edit.get_int("groups").value_or(1);
    const std::int64_t old_in = edit.get_int("in_channels").value_or(0);
    const std::int64_t old_in_per_group = edit.old_shapes.at("weight")[1];
    std::int64_t groups = old_groups;
    if (old_groups > 1 && old_in_per_group == 1 && old_in == old_groups) {
      groups = old_groups * (*out) / edit.old_shapes.at("weight")[0];  // depthwise: one group per channel
    }
    edit.set_int("out_channels", *out);
    edit.set_int("in_channels", (*in_per_group) * groups);
    edit.set_int("groups", groups);
  };
  for (const char* name : {"Conv1d", "Conv2d", "Conv3d"}) rules.set(name, conv);
  rules.set("Linear", [](const ModuleEdit& edit) {
    if (auto out = new_dim(edit, "weight", 0)) edit.set_int("out_features", *out);
    if (auto in = new_dim(edit, "weight", 1)) edit.set_int("in_features", *in);
  });
  ModuleRule batch_norm = [](const ModuleEdit& edit) {
    auto width = new_dim(edit, "running_mean", 0);
    if (!width) width = new_dim(edit, "weight", 0);
    if (width) edit.set_int("num_features", *width);
  };
  for (const char* name : {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"}) rules.set(name, batch_norm);
  rules.set("GroupNorm", [](const ModuleEdit& edit) {
    auto width = new_dim(edit, "weight", 0);
    auto old_groups = edit.get_int("num_groups");
    auto old_channels = edit.get_int("num_channels");
    if (!width || !old_groups || !old_channels || *old_channels == 0) return;
    edit.set_int("num_channels", *width);
    edit.set_int("num_groups", (*width) * (*old_groups) / (*old_channels));
  });
  return rules;
}

}  // namespace

const ModuleRules& ModuleRules::builtin() {
  // With the transformer classes (whole heads, the default unit of PruneRules::builtin()).
  static const ModuleRules rules = transformer_module_rules(AttentionPruning::kHeads, make_builtin_module_rules());
  return rules;
}

const ModuleRule* ModuleRules::find(const std::string& class_name) const {
  auto found = rules_.find(class_name);
  return found == rules_.end() ? nullptr : &found->second;
}

// ---------------------------------------------------------------------------------------------------
// Rules from plugins

const PruneRules& PruneRules::registered() {
  static auto* cache = new ExtensionSnapshots<PruneRules>();
  return cache->get([] { return with_plugin_rules<PruneRule>(builtin(), kPruneRulePoint); });
}

const ModuleRules& ModuleRules::registered() {
  static auto* cache = new ExtensionSnapshots<ModuleRules>();
  return cache->get([] { return with_plugin_rules<ModuleRule>(builtin(), kModuleRulePoint); });
}

void add_prune_rule(Registrar& registrar, const std::string& op, PruneRule rule) {
  const std::string what = "add_prune_rule(" + op + "): ";
  check_plugin_op_symbol(what, op);
  if (!rule) throw std::invalid_argument(what + "the rule is empty");
  if (PruneRules::builtin().find(op) != nullptr)
    throw std::invalid_argument(what + "the op has a built-in pruning rule; a plugin may add rules for ops the "
                                       "built-ins lack, not replace one (to replace it for one graph, pass a copy "
                                       "of PruneRules::registered() with the rule set in DependencyOptions::rules)");
  registrar.add_extension(kPruneRulePoint, op, std::make_shared<const PruneRule>(std::move(rule)));
}

void add_module_attribute_rule(Registrar& registrar, const std::string& class_name, ModuleRule rule) {
  const std::string what = "add_module_attribute_rule(" + class_name + "): ";
  if (class_name.empty()) throw std::invalid_argument(what + "the module class name is empty");
  if (!rule) throw std::invalid_argument(what + "the rule is empty");
  if (ModuleRules::builtin().find(class_name) != nullptr)
    throw std::invalid_argument(what + "the class has a built-in module-attribute rule; a plugin may add rules "
                                       "for classes the built-ins lack, not replace one");
  registrar.add_extension(kModuleRulePoint, class_name, std::make_shared<const ModuleRule>(std::move(rule)));
}

}  // namespace profagent::torch_tk

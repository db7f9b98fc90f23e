// Building the dependency graph: the working copy, its inlined and specialised forward, shapes from
// one run, the rules applied node by node, and groups from the union-find classes (docs/pruning.md).
#include "profagent/prune/prune_graph.hpp"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "profagent/clock.hpp"
#include "profagent/extension.hpp"
#include "profagent/log.hpp"
#include "profagent/torch/ir_constants.hpp"
#include "prune_internal.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

bool is_tensor_type(const Value* value) {
  return value->type()->kind() == c10::TypeKind::TensorType;
}

// Tensor or Optional[Tensor] (scripted code passes `self.running_mean if ... else None`).
bool is_tensor_like(const Value* value) {
  if (is_tensor_type(value)) return true;
  auto optional = value->type()->cast<c10::OptionalType>();
  return optional && optional->getElementType()->kind() == c10::TypeKind::TensorType;
}

// Ops that read only a tensor's metadata (sizes, dtype, device): they need no mapping and a
// dynamic size adapts by itself to a pruned tensor.
bool is_metadata_op(const std::string& op) {
  static const std::set<std::string> kOps = {
      "aten::size",  "aten::dim",          "aten::len",   "aten::numel",        "prim::shape",
      "prim::device", "prim::dtype",       "prim::layout", "aten::is_floating_point", "prim::is_cuda",
      "aten::__is__", "aten::__isnot__",   "prim::requires_grad", "aten::is_complex", "prim::is_quantized",
      "aten::__getitem__", "aten::append", "prim::unchecked_cast", "aten::_assert", "aten::warn",
      "prim::RaiseException", "aten::get_device", "aten::stride",
      "prim::is_nested", "prim::is_mkldnn",  "prim::is_sparse", "prim::is_meta", "aten::is_grad_enabled"};
  return kOps.count(op) > 0;
}

// The elements of a list or tuple value built in the graph (nested), else the value itself.
void flatten_tensors(const Value* value, std::vector<const Value*>& out, int depth = 0) {
  const Node* producer = value->node();
  const auto kind = producer->kind();
  if (depth < 8 && (kind == c10::prim::ListConstruct || kind == c10::prim::TupleConstruct)) {
    for (const Value* element : producer->inputs()) flatten_tensors(element, out, depth + 1);
    // Elements appended later (scripted DenseNet builds a list with aten::append).
    for (const torch::jit::Use& use : value->uses()) {
      if (use.user->kind() == c10::aten::append && use.offset == 0) flatten_tensors(use.user->input(1), out, depth + 1);
    }
    return;
  }
  if (is_tensor_like(value)) out.push_back(value);
}

std::string class_base_name(const c10::ClassTypePtr& type) {
  if (!type || !type->name()) return "";
  return type->name()->name();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Registries

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

const PruneRule* PruneRules::find(const std::string& op) const {
  auto found = rules_.find(op);
  if (found != rules_.end()) return &found->second;
  if (!op.empty() && op.back() == '_') {
    found = rules_.find(op.substr(0, op.size() - 1));
    if (found != rules_.end()) return &found->second;
  }
  return nullptr;
}

bool ModuleEdit::set_int(const std::string& attr, std::int64_t value) const {
  auto type = module.type();
  auto slot = type->findAttributeSlot(attr);
  if (!slot || type->getAttribute(*slot)->kind() != c10::TypeKind::IntType) return false;
  module._ivalue()->setSlot(*slot, c10::IValue(value));
  return true;
}

std::optional<std::int64_t> ModuleEdit::get_int(const std::string& attr) const {
  auto type = module.type();
  auto slot = type->findAttributeSlot(attr);
  if (!slot) return std::nullopt;
  c10::IValue value = module._ivalue()->getSlot(*slot);
  if (!value.isInt()) return std::nullopt;
  return value.toInt();
}

namespace {

std::optional<std::int64_t> new_dim(const ModuleEdit& edit, const std::string& attr, std::size_t dim) {
  auto found = edit.new_shapes.find(attr);
  if (found == edit.new_shapes.end() || found->second.size() <= dim) return std::nullopt;
  return found->second[dim];
}

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
  static const ModuleRules rules = make_builtin_module_rules();
  return rules;
}

const ModuleRule* ModuleRules::find(const std::string& class_name) const {
  auto found = rules_.find(class_name);
  return found == rules_.end() ? nullptr : &found->second;
}

// ---------------------------------------------------------------------------------------------------
// Rules from plugins (extension points kPruneRulePoint, kModuleRulePoint)

const PruneRules& PruneRules::registered() {
  static auto* cache = new ExtensionSnapshots<PruneRules>();
  return cache->get([] {
    PruneRules rules = builtin();
    for (const auto& [op, value] : extensions(kPruneRulePoint))
      rules.set(op, *std::static_pointer_cast<const PruneRule>(value));
    return rules;
  });
}

const ModuleRules& ModuleRules::registered() {
  static auto* cache = new ExtensionSnapshots<ModuleRules>();
  return cache->get([] {
    ModuleRules rules = builtin();
    for (const auto& [class_name, value] : extensions(kModuleRulePoint))
      rules.set(class_name, *std::static_pointer_cast<const ModuleRule>(value));
    return rules;
  });
}

void add_prune_rule(Registrar& registrar, const std::string& op, PruneRule rule) {
  const std::string what = "add_prune_rule(" + op + "): ";
  if (op.find("::") == std::string::npos || op.size() < 4)
    throw std::invalid_argument(what + "not a qualified op symbol (e.g. aten::softshrink, myops::scale)");
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

// ---------------------------------------------------------------------------------------------------
// PruneAnalysis

std::int64_t PruneAnalysis::find(std::int64_t atom) {
  while (parent[atom] != atom) {
    parent[atom] = parent[parent[atom]];
    atom = parent[atom];
  }
  return atom;
}

void PruneAnalysis::merge(std::int64_t a, std::int64_t b) {
  a = find(a);
  b = find(b);
  if (a == b) return;
  if (b < a) std::swap(a, b);
  parent[b] = a;
  touches_param[a] = touches_param[a] || touches_param[b];
}

std::optional<PruneShape> PruneAnalysis::shape(const Value* value) const {
  auto param = params.find(value);
  if (param != params.end()) return param->second.tensor.sizes().vec();
  auto found = shapes.find(value);
  if (found != shapes.end()) return found->second;
  return std::nullopt;
}

std::int64_t PruneAnalysis::slot(const Value* value, std::int64_t dim) {
  auto found = slot_index.find({value, dim});
  if (found != slot_index.end()) return found->second;
  auto value_shape = shape(value);
  if (!value_shape || dim < 0 || dim >= static_cast<std::int64_t>(value_shape->size())) return -1;
  SlotInfo info;
  info.value = value;
  info.dim = dim;
  info.width = (*value_shape)[static_cast<std::size_t>(dim)];
  info.base = static_cast<std::int64_t>(parent.size());
  const bool is_param = params.count(value) > 0;
  for (std::int64_t i = 0; i < info.width; ++i) {
    parent.push_back(info.base + i);
    frozen.push_back(0);
    touches_param.push_back(is_param ? 1 : 0);
  }
  const auto id = static_cast<std::int64_t>(slots.size());
  slots.push_back(info);
  slot_index[{value, dim}] = id;
  slots_of_value.emplace(value, id);
  return id;
}

int PruneAnalysis::reason(const std::string& text) {
  auto found = reason_index.find(text);
  if (found != reason_index.end()) return found->second;
  const int id = static_cast<int>(reasons.size());
  reasons.push_back(text);
  reason_index[text] = id;
  return id;
}

void PruneAnalysis::freeze_atom(std::int64_t atom, int reason_id) {
  frozen[atom] = 1;
  freeze_reason.emplace(atom, reason_id);
}

void PruneAnalysis::warn(const std::string& message) {
  if (warning_set.insert(message).second) warnings.push_back(message);
}

// The module path of the node's innermost inlined module call ("layer1.0.conv1"), else the owner of
// a parameter it reads, else "(root)".
std::string PruneAnalysis::layer_of(const Node* node) const {
  std::string path;
  if (auto stack = node->callstack()) {
    for (const auto& entry : (*stack)->vec()) {
      const auto& info = std::get<2>(entry);
      if (!info) continue;
      const std::string name = info->instance_name();
      if (name.empty() || name == "self" || name == "SELF") continue;
      path += (path.empty() ? "" : ".") + name;
    }
  }
  if (!path.empty()) return path;
  for (const Value* input : node->inputs()) {
    auto found = params.find(input);
    if (found != params.end()) return found->second.module_path.empty() ? "(root)" : found->second.module_path;
  }
  return "(root)";
}

std::string PruneAnalysis::where(const Node* node) const {
  std::string text = std::string(node->kind().toQualString()) + " in layer '" + layer_of(node) + "'";
  if (!node->outputs().empty()) text += " (%" + node->output(0)->debugName() + ")";
  return text;
}

bool PruneAnalysis::executed(const Node* node) const {
  for (const Block* block = node->owningBlock(); block != nullptr && block->owningNode() != nullptr;
       block = block->owningNode()->owningBlock()) {
    if (!executed_blocks.count(block)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// RuleContext

std::string RuleContext::where() const { return analysis_.where(node_); }

std::optional<PruneShape> RuleContext::shape(const Value* value) const { return analysis_.shape(value); }

std::optional<PruneShape> RuleContext::input_shape(std::size_t i) const {
  if (i >= node_->inputs().size()) return std::nullopt;
  return analysis_.shape(node_->input(i));
}

std::optional<PruneShape> RuleContext::output_shape(std::size_t i) const {
  if (i >= node_->outputs().size()) return std::nullopt;
  return analysis_.shape(node_->output(i));
}

bool RuleContext::is_tensor(const Value* value) const { return is_tensor_type(value); }

const ParamRef* RuleContext::param(const Value* value) const {
  auto found = analysis_.params.find(value);
  return found == analysis_.params.end() ? nullptr : &found->second;
}

std::optional<std::int64_t> RuleContext::int_input(std::size_t i) const {
  if (i >= node_->inputs().size()) return std::nullopt;
  return ir::constant_int(node_->input(i));
}

std::optional<std::vector<std::int64_t>> RuleContext::int_list_input(std::size_t i) const {
  if (i >= node_->inputs().size()) return std::nullopt;
  return ir::constant_int_list(node_->input(i));
}

std::optional<bool> RuleContext::bool_input(std::size_t i) const {
  if (i >= node_->inputs().size()) return std::nullopt;
  return ir::constant_bool(node_->input(i));
}

std::optional<std::int64_t> RuleContext::int_value(std::size_t i) const {
  if (auto constant = int_input(i)) return constant;
  if (i >= node_->inputs().size()) return std::nullopt;
  const Value* value = node_->input(i);
  if (value->node()->kind() != c10::prim::GetAttr || value->type()->kind() != c10::TypeKind::IntType) {
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (const Value* at = value->node()->input(0); at != analysis_.graph->inputs().at(0); at = at->node()->input(0)) {
    if (at->node()->kind() != c10::prim::GetAttr) return std::nullopt;
    names.push_back(at->node()->s(torch::jit::attr::name));
  }
  torch::jit::Module owner = analysis_.module;
  for (auto it = names.rbegin(); it != names.rend(); ++it) owner = owner.attr(*it).toModule();
  c10::IValue attr = owner.attr(value->node()->s(torch::jit::attr::name));
  if (!attr.isInt()) return std::nullopt;
  return attr.toInt();
}

bool RuleContext::is_none(std::size_t i) const {
  return i < node_->inputs().size() && node_->input(i)->type()->kind() == c10::TypeKind::NoneType;
}

std::optional<std::vector<const Value*>> RuleContext::list_elements(std::size_t i) const {
  if (i >= node_->inputs().size()) return std::nullopt;
  const Value* list = node_->input(i);
  while (list->node()->kind() == c10::prim::unchecked_cast) list = list->node()->input(0);
  const Node* producer = list->node();
  if (producer->kind() != c10::prim::ListConstruct) return std::nullopt;
  std::vector<const Value*> elements(producer->inputs().begin(), producer->inputs().end());
  // Appends in the same block before this node, in program order; any other mutation: unknown.
  std::vector<const Node*> appends;
  for (const torch::jit::Use& use : list->uses()) {
    const Node* user = use.user;
    if (user == node_) continue;
    const auto kind = user->kind();
    if (kind == c10::aten::append) {
      if (user->owningBlock() != node_->owningBlock()) return std::nullopt;
      if (user->isBefore(node_)) appends.push_back(user);
      continue;
    }
    static const std::set<std::string> kReaders = {"aten::cat", "aten::stack", "aten::len", "aten::__getitem__",
                                                   "prim::ListUnpack", "aten::concat", "prim::unchecked_cast"};
    if (!kReaders.count(kind.toQualString())) return std::nullopt;
  }
  std::sort(appends.begin(), appends.end(), [](const Node* a, const Node* b) { return a->isBefore(b); });
  for (const Node* append : appends) elements.push_back(append->input(1));
  return elements;
}

std::optional<std::vector<const Value*>> RuleContext::list_output_elements(std::size_t i) const {
  if (i >= node_->outputs().size()) return std::nullopt;
  const Value* list = node_->output(i);
  std::map<std::int64_t, const Value*> by_index;
  std::int64_t count = -1;
  for (const torch::jit::Use& use : list->uses()) {
    const Node* user = use.user;
    if (user->kind() == c10::prim::ListUnpack) {
      count = static_cast<std::int64_t>(user->outputs().size());
      for (std::size_t k = 0; k < user->outputs().size(); ++k) by_index[static_cast<std::int64_t>(k)] = user->output(k);
    } else if (user->kind() == c10::aten::__getitem__) {
      auto index = torch::jit::toIValue(user->input(1));
      if (!index || !index->isInt()) return std::nullopt;
      by_index[index->toInt()] = user->output();
    } else if (is_metadata_op(user->kind().toQualString()) && user->kind() != c10::aten::append) {
      continue;
    } else {
      return std::nullopt;
    }
  }
  if (count < 0) {
    // Only __getitem__ uses: the element count comes from the op (split sizes), the caller checks.
    if (by_index.empty()) return std::vector<const Value*>{};
    count = by_index.rbegin()->first + 1;
  }
  std::vector<const Value*> elements(static_cast<std::size_t>(count), nullptr);
  for (const auto& [index, value] : by_index) {
    if (index < 0 || index >= count) return std::nullopt;
    elements[static_cast<std::size_t>(index)] = value;
  }
  return elements;
}

void RuleContext::identity(SlotRef a, SlotRef b) {
  const std::int64_t sa = analysis_.slot(a.value, a.dim);
  const std::int64_t sb = analysis_.slot(b.value, b.dim);
  // An Optional[Tensor] that ran without a shape was None: nothing to map.
  if ((sa < 0 && !is_tensor_type(a.value) && is_tensor_like(a.value) && !analysis_.shapes.count(a.value)) ||
      (sb < 0 && !is_tensor_type(b.value) && is_tensor_like(b.value) && !analysis_.shapes.count(b.value))) {
    return;
  }
  if (sa < 0 || sb < 0) {
    if (sa >= 0) freeze(a, "unknown shape at " + where());
    if (sb >= 0) freeze(b, "unknown shape at " + where());
    return;
  }
  const SlotInfo& ia = analysis_.slots[sa];
  const SlotInfo& ib = analysis_.slots[sb];
  if (ia.width != ib.width) {
    const std::string reason = "widths " + std::to_string(ia.width) + " and " + std::to_string(ib.width) +
                               " do not match at " + where();
    freeze(a, reason);
    freeze(b, reason);
    return;
  }
  for (std::int64_t i = 0; i < ia.width; ++i) analysis_.merge(ia.base + i, analysis_.slots[sb].base + i);
}

void RuleContext::map_range(SlotRef a, std::int64_t a_start, SlotRef b, std::int64_t b_start, std::int64_t count) {
  const std::int64_t sa = analysis_.slot(a.value, a.dim);
  const std::int64_t sb = analysis_.slot(b.value, b.dim);
  if (sa < 0 || sb < 0) return;
  const SlotInfo ia = analysis_.slots[sa];
  const SlotInfo ib = analysis_.slots[sb];
  if (a_start < 0 || b_start < 0 || a_start + count > ia.width || b_start + count > ib.width) {
    const std::string reason = "index range out of bounds at " + where();
    freeze(a, reason);
    freeze(b, reason);
    return;
  }
  for (std::int64_t k = 0; k < count; ++k) analysis_.merge(ia.base + a_start + k, ib.base + b_start + k);
}

void RuleContext::unite(SlotRef a, std::int64_t a_index, SlotRef b, std::int64_t b_index) {
  map_range(a, a_index, b, b_index, 1);
}

void RuleContext::identity_all_dims(const Value* a, const Value* b) {
  auto sa = shape(a);
  auto sb = shape(b);
  if (!sa || !sb) {
    freeze_value(a, "unknown shape at " + where());
    freeze_value(b, "unknown shape at " + where());
    return;
  }
  if (sa->size() != sb->size()) {
    freeze_value(a, "ranks differ at " + where());
    freeze_value(b, "ranks differ at " + where());
    return;
  }
  for (std::size_t d = 0; d < sa->size(); ++d) {
    identity({a, static_cast<std::int64_t>(d)}, {b, static_cast<std::int64_t>(d)});
  }
}

void RuleContext::broadcast_to(const Value* input, const Value* output) {
  auto si = shape(input);
  auto so = shape(output);
  if (!si || !so) {
    freeze_value(input, "unknown shape at " + where());
    freeze_value(output, "unknown shape at " + where());
    return;
  }
  if (si->size() > so->size()) {
    freeze_value(input, "input has more dims than the output at " + where());
    freeze_value(output, "input has more dims than the output at " + where());
    return;
  }
  const auto offset = static_cast<std::int64_t>(so->size() - si->size());
  for (std::size_t d = 0; d < si->size(); ++d) {
    const std::int64_t od = static_cast<std::int64_t>(d) + offset;
    const std::int64_t in_width = (*si)[d];
    const std::int64_t out_width = (*so)[static_cast<std::size_t>(od)];
    if (in_width == out_width) {
      identity({input, static_cast<std::int64_t>(d)}, {output, od});
    } else if (in_width != 1) {
      freeze({input, static_cast<std::int64_t>(d)}, "broadcast mismatch at " + where());
      freeze({output, od}, "broadcast mismatch at " + where());
    }
  }
}

void RuleContext::freeze(SlotRef slot, const std::string& reason) {
  const std::int64_t id = analysis_.slot(slot.value, slot.dim);
  if (id < 0) {
    // Unknown width: freeze the whole value, whatever slots appear later.
    freeze_value(slot.value, reason);
    return;
  }
  const int reason_id = analysis_.reason(reason);
  const SlotInfo& info = analysis_.slots[id];
  for (std::int64_t i = 0; i < info.width; ++i) analysis_.freeze_atom(info.base + i, reason_id);
}

void RuleContext::freeze_index(SlotRef slot, std::int64_t index, const std::string& reason) {
  const std::int64_t id = analysis_.slot(slot.value, slot.dim);
  if (id < 0) {
    freeze_value(slot.value, reason);
    return;
  }
  const SlotInfo& info = analysis_.slots[id];
  if (index < 0 || index >= info.width) return;
  analysis_.freeze_atom(info.base + index, analysis_.reason(reason));
}

void RuleContext::freeze_value(const Value* value, const std::string& reason) {
  analysis_.value_freezes.emplace_back(value, analysis_.reason(reason));
}

void RuleContext::freeze_all(const std::string& reason) {
  std::vector<const Value*> tensors;
  for (const Value* input : node_->inputs()) flatten_tensors(input, tensors);
  for (const Value* output : node_->outputs()) {
    if (is_tensor_like(output)) tensors.push_back(output);
  }
  for (const Value* tensor : tensors) freeze_value(tensor, reason);
}

bool RuleContext::reaches_parameter(SlotRef slot) {
  const std::int64_t id = analysis_.slot(slot.value, slot.dim);
  if (id < 0) return false;
  const SlotInfo& info = analysis_.slots[id];
  for (std::int64_t i = 0; i < info.width; ++i) {
    if (analysis_.touches_param[analysis_.find(info.base + i)]) return true;
  }
  return false;
}

void RuleContext::role(SlotRef slot, const std::string& role, const std::string& module_kind) {
  const Value* value = slot.value;
  std::int64_t dim = slot.dim;
  // Follow views of a parameter back to it (addmm reads weight.t()).
  for (int depth = 0; depth < 8 && !analysis_.params.count(value); ++depth) {
    const Node* producer = value->node();
    const std::string kind = producer->kind().toQualString();
    if (kind == "aten::t" || kind == "aten::numpy_T") {
      dim = 1 - dim;
    } else if (kind == "aten::transpose") {
      auto rank = shape(producer->input(0));
      auto d0 = torch::jit::toIValue(producer->input(1));
      auto d1 = torch::jit::toIValue(producer->input(2));
      if (!rank || !d0 || !d1) return;
      auto n = static_cast<std::int64_t>(rank->size());
      const std::int64_t a = (d0->toInt() + n) % n;
      const std::int64_t b = (d1->toInt() + n) % n;
      dim = dim == a ? b : (dim == b ? a : dim);
    } else if (kind == "aten::permute") {
      auto dims = torch::jit::toIValue(producer->input(1));
      if (!dims || !dims->isIntList()) return;
      auto list = dims->toIntVector();
      if (dim >= static_cast<std::int64_t>(list.size())) return;
      dim = (list[static_cast<std::size_t>(dim)] + static_cast<std::int64_t>(list.size())) %
            static_cast<std::int64_t>(list.size());
    } else if (kind == "aten::contiguous" || kind == "aten::detach" || kind == "aten::to" || kind == "aten::clone") {
      // same dim
    } else {
      return;
    }
    value = producer->input(0);
  }
  auto found = analysis_.params.find(value);
  if (found == analysis_.params.end()) return;
  auto& entry = analysis_.roles[{found->second.name, dim}];
  if (entry.first.empty() || role == prune_role::kProducer) entry = {role, module_kind};
}

namespace {

enum class IntSource { kConstant, kAttribute, kDynamic, kUnknown };

// Whether an int is computed from tensor sizes (and constants) only, so that it adapts by itself.
bool from_sizes(const Value* value, int depth = 0) {
  if (depth > 12) return false;
  const Node* producer = value->node();
  const std::string kind = producer->kind().toQualString();
  if (kind == "aten::size" || kind == "prim::shape" || kind == "aten::dim" || kind == "aten::len" ||
      kind == "aten::numel") {
    return true;
  }
  static const std::set<std::string> kArithmetic = {
      "aten::Int",  "prim::NumToTensor", "aten::ScalarImplicit", "aten::mul", "aten::add", "aten::sub",
      "aten::floordiv", "aten::div", "aten::__getitem__", "aten::neg", "aten::remainder", "prim::min",
      "prim::max", "aten::floor", "aten::ceil", "aten::__derive_index", "prim::unchecked_cast"};
  if (!kArithmetic.count(kind)) return false;
  bool any = false;
  for (const Value* input : producer->inputs()) {
    if (input->node()->kind() == c10::prim::Constant) continue;
    if (!from_sizes(input, depth + 1)) return false;
    any = true;
  }
  return any;
}

IntSource classify_int(const Value* value) {
  const auto kind = value->node()->kind();
  if (kind == c10::prim::Constant) return IntSource::kConstant;
  if (kind == c10::prim::GetAttr && value->type()->kind() == c10::TypeKind::IntType) return IntSource::kAttribute;
  if (from_sizes(value)) return IntSource::kDynamic;
  return IntSource::kUnknown;
}

// The module path of a module value reached by prim::GetAttr from the graph's input 0.
std::optional<std::string> module_path_of(const Value* value, const Value* self) {
  std::vector<std::string> names;
  while (value != self) {
    if (value->node()->kind() != c10::prim::GetAttr) return std::nullopt;
    names.push_back(value->node()->s(torch::jit::attr::name));
    value = value->node()->input(0);
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : ".") + *it;
  return path;
}

}  // namespace

void RuleContext::int_edit(std::size_t input, std::int64_t element, SlotRef source, std::int64_t numerator,
                           std::int64_t denominator) {
  const std::int64_t slot_id = analysis_.slot(source.value, source.dim);
  if (slot_id < 0 || input >= node_->inputs().size()) return;
  IntEditSpec spec;
  spec.slot = slot_id;
  spec.numerator = numerator;
  spec.denominator = denominator;
  Value* used = node_->input(input);
  const Value* the_int = used;
  spec.node = node_;
  spec.input = input;
  spec.element = -1;
  if (element >= 0) {
    if (used->node()->kind() == c10::prim::ListConstruct) {
      if (element >= static_cast<std::int64_t>(used->node()->inputs().size())) return;
      spec.node = used->node();
      spec.input = static_cast<std::size_t>(element);
      the_int = used->node()->input(static_cast<std::size_t>(element));
    } else if (used->node()->kind() == c10::prim::Constant) {
      auto list = torch::jit::toIValue(used);
      if (!list || !list->isIntList() || element >= static_cast<std::int64_t>(list->toIntVector().size())) return;
      spec.element = element;
      spec.old_value = list->toIntVector()[static_cast<std::size_t>(element)];
      if (spec.old_value >= 0) analysis_.int_edits.push_back(spec);
      return;
    } else if (from_sizes(used)) {
      return;
    } else {
      freeze(source, "size list of " + where() + " is computed in a way pruning cannot rewrite");
      return;
    }
  }
  switch (classify_int(the_int)) {
    case IntSource::kConstant: {
      auto constant = torch::jit::toIValue(the_int);
      if (!constant || !constant->isInt()) return;
      spec.old_value = constant->toInt();
      if (spec.old_value < 0) return;  // -1 in a view: inferred
      analysis_.int_edits.push_back(spec);
      return;
    }
    case IntSource::kAttribute: {
      auto path = module_path_of(the_int->node()->input(0), analysis_.graph->inputs().at(0));
      if (!path) break;
      spec.attr_module = *path;
      spec.attr_name = the_int->node()->s(torch::jit::attr::name);
      torch::jit::Module owner = analysis_.module;
      if (!path->empty()) {
        std::stringstream names(*path);
        std::string name;
        while (std::getline(names, name, '.')) owner = owner.attr(name).toModule();
      }
      spec.old_value = owner.attr(spec.attr_name).toInt();
      analysis_.int_edits.push_back(spec);
      return;
    }
    case IntSource::kDynamic:
      // Computed from tensor sizes: it follows by itself only when those are this slot's sizes. A slot
      // that loses units has a width fixed by parameters, never by the input, so its new width as a
      // constant is right either way (Swin: reshape(B, N, C) after its heads, C = x.size(-1)).
      spec.old_value = analysis_.slots[static_cast<std::size_t>(slot_id)].width * numerator / denominator;
      analysis_.int_edits.push_back(spec);
      return;
    case IntSource::kUnknown:
      break;
  }
  freeze(source, "an int of " + where() + " is computed in a way pruning cannot rewrite");
}

void RuleContext::warn(const std::string& message) { analysis_.warn(message); }

// ---------------------------------------------------------------------------------------------------
// Building

namespace {

class Builder {
 public:
  explicit Builder(PruneAnalysis& analysis) : a_(analysis) {}

  void specialise() {
    // Branches whose condition depends only on constants and module attributes (not `training`) take
    // the same way for every input of this instance: keep the way the example took.
    bool changed = true;
    while (changed) {
      changed = false;
      std::vector<Node*> ifs;
      collect_ifs(a_.graph->block(), ifs);
      for (Node* node : ifs) {
        if (!static_value(node->input(0), 0)) continue;
        const Block* taken = nullptr;
        for (const Block* block : node->blocks()) {
          if (a_.executed_blocks.count(block)) taken = block;
        }
        if (taken == nullptr) continue;
        inline_block(node, const_cast<Block*>(taken));
        changed = true;
        break;  // node lists changed: collect again
      }
    }
  }

  void resolve_params() {
    const Value* self = a_.graph->inputs().at(0);
    std::vector<Node*> nodes;
    collect_nodes(a_.graph->block(), nodes);
    for (Node* node : nodes) {
      if (node->kind() != c10::prim::GetAttr || !is_tensor_like(node->output())) continue;
      auto path = module_path_of(node->input(0), self);
      if (!path) continue;
      torch::jit::Module owner = a_.module;
      if (!path->empty()) {
        std::stringstream names(*path);
        std::string name;
        bool ok = true;
        while (ok && std::getline(names, name, '.')) {
          c10::IValue child = owner._ivalue()->getAttr(name);
          ok = child.isObject();
          if (ok) owner = torch::jit::Module(child.toObject());
        }
        if (!ok) continue;
      }
      const std::string attr = node->s(torch::jit::attr::name);
      auto type = owner.type();
      auto slot = type->findAttributeSlot(attr);
      if (!slot) continue;
      c10::IValue tensor = owner._ivalue()->getSlot(*slot);
      if (!tensor.isTensor() || !tensor.toTensor().defined()) continue;
      if (!type->is_parameter(*slot) && !type->is_buffer(*slot)) {
        tensor_attributes_.push_back(node->output());
        continue;
      }
      ParamRef ref;
      ref.module_path = *path;
      ref.attr = attr;
      ref.name = path->empty() ? attr : *path + "." + attr;
      ref.is_buffer = type->is_buffer(*slot);
      ref.tensor = tensor.toTensor();
      if (!a_.param_values.count(ref.name)) param_order_.push_back(ref.name);
      a_.param_values[ref.name].push_back(node->output());
      a_.params[node->output()] = std::move(ref);
    }
  }

  void apply_rules() {
    walk(a_.graph->block(), true);
    // The same parameter read twice (several GetAttr) is one tensor: its dims are the same slots.
    for (const auto& [name, values] : a_.param_values) {
      for (std::size_t i = 1; i < values.size(); ++i) {
        RuleContext context(a_, const_cast<Node*>(values[i]->node()));
        context.identity_all_dims(values[0], values[i]);
      }
    }
    RuleContext graph_context(a_, a_.graph->return_node());
    for (const Value* input : a_.graph->inputs()) {
      if (input != a_.graph->inputs().at(0)) freeze_flattened(graph_context, input, "model input");
    }
    for (const Value* output : a_.graph->outputs()) freeze_flattened(graph_context, output, "model output");
    for (const Value* value : tensor_attributes_) {
      graph_context.freeze_value(value, "tensor attribute that is not a parameter or buffer");
    }
  }

  void finish() {
    // Value-level freezes cover every slot of the value, including those created after the request.
    for (const auto& [value, reason_id] : a_.value_freezes) {
      auto range = a_.slots_of_value.equal_range(value);
      for (auto it = range.first; it != range.second; ++it) {
        const SlotInfo& info = a_.slots[it->second];
        for (std::int64_t i = 0; i < info.width; ++i) a_.freeze_atom(info.base + i, reason_id);
      }
    }
    const auto atoms = static_cast<std::int64_t>(a_.parent.size());
    std::vector<char> root_frozen(static_cast<std::size_t>(atoms), 0);
    std::vector<int> root_reason(static_cast<std::size_t>(atoms), -1);
    for (std::int64_t atom = 0; atom < atoms; ++atom) {
      if (!a_.frozen[atom]) continue;
      const std::int64_t root = a_.find(atom);
      root_frozen[root] = 1;
      if (root_reason[root] < 0) root_reason[root] = a_.freeze_reason.at(atom);
    }
    // Candidate units: classes holding a producer dim of a parameter.
    std::vector<char> has_producer(static_cast<std::size_t>(atoms), 0);
    std::vector<std::int64_t> producer_slots;
    for (const std::string& name : param_order_) {
      for (const Value* value : a_.param_values.at(name)) {
        auto shape = a_.shape(value);
        for (std::size_t d = 0; shape && d < shape->size(); ++d) {
          auto role = a_.roles.find({name, static_cast<std::int64_t>(d)});
          if (role == a_.roles.end() || role->second.first != prune_role::kProducer) continue;
          const std::int64_t id = a_.slot(value, static_cast<std::int64_t>(d));
          if (id < 0) continue;
          producer_slots.push_back(id);
          const SlotInfo& info = a_.slots[id];
          for (std::int64_t i = 0; i < info.width; ++i) has_producer[a_.find(info.base + i)] = 1;
        }
      }
    }
    std::map<int, std::int64_t> frozen_units;
    for (std::int64_t atom = 0; atom < atoms; ++atom) {
      if (a_.find(atom) == atom && has_producer[atom] && root_frozen[atom]) frozen_units[root_reason[atom]] += 1;
    }
    for (const auto& [reason_id, count] : frozen_units) {
      a_.frozen_notes.push_back(FrozenNote{a_.reasons[static_cast<std::size_t>(reason_id)], count});
    }
    std::sort(a_.frozen_notes.begin(), a_.frozen_notes.end(),
              [](const FrozenNote& x, const FrozenNote& y) { return x.units > y.units; });

    // Signatures: the slots each prunable unit touches.
    auto prunable = [&](std::int64_t root) { return has_producer[root] && !root_frozen[root]; };
    std::unordered_map<std::int64_t, std::vector<std::int64_t>> signature;
    for (std::int64_t id = 0; id < static_cast<std::int64_t>(a_.slots.size()); ++id) {
      const SlotInfo& info = a_.slots[id];
      for (std::int64_t i = 0; i < info.width; ++i) {
        const std::int64_t root = a_.find(info.base + i);
        if (!prunable(root)) continue;
        auto& slots = signature[root];
        if (slots.empty() || slots.back() != id) slots.push_back(id);
      }
    }
    std::map<std::vector<std::int64_t>, std::vector<std::int64_t>> by_signature;
    for (const auto& [root, slots] : signature) by_signature[slots].push_back(root);

    // One group per signature, ordered by its first producer in graph order.
    struct Pending {
      std::size_t order;
      PruneGroup group;
      std::vector<std::int64_t> roots;
    };
    std::vector<Pending> pending;
    std::unordered_map<std::int64_t, std::size_t> producer_order;
    for (std::size_t k = 0; k < producer_slots.size(); ++k) producer_order.emplace(producer_slots[k], k);
    for (auto& [slots, roots] : by_signature) {
      Pending entry;
      entry.order = producer_slots.size();
      std::int64_t producer_slot = -1;
      for (std::int64_t id : slots) {
        auto found = producer_order.find(id);
        if (found != producer_order.end() && found->second < entry.order) {
          entry.order = found->second;
          producer_slot = id;
        }
      }
      if (producer_slot < 0) continue;
      // Units in the order of their first index in the producer's dim.
      const SlotInfo& producer = a_.slots[producer_slot];
      std::unordered_map<std::int64_t, std::int64_t> first_index;
      for (std::int64_t i = 0; i < producer.width; ++i) first_index.emplace(a_.find(producer.base + i), i);
      std::sort(roots.begin(), roots.end(),
                [&](std::int64_t x, std::int64_t y) { return first_index.at(x) < first_index.at(y); });
      std::unordered_map<std::int64_t, std::size_t> unit_of;
      for (std::size_t u = 0; u < roots.size(); ++u) unit_of[roots[u]] = u;
      const ParamRef& producer_param = a_.params.at(producer.value);
      entry.group.name = producer_param.module_path.empty() ? "(root)" : producer_param.module_path;
      entry.group.producer = producer_param.name;
      entry.group.producer_dim = producer.dim;
      entry.group.units = static_cast<std::int64_t>(roots.size());
      for (std::int64_t root : roots) entry.group.unit_ids.push_back(first_index.at(root));
      entry.group.key = producer_param.name + ":" + std::to_string(producer.dim) + "@" +
                        std::to_string(entry.group.unit_ids.front());
      std::set<std::pair<std::string, std::int64_t>> seen;
      for (std::int64_t id : slots) {
        const SlotInfo& info = a_.slots[id];
        auto param = a_.params.find(info.value);
        if (param == a_.params.end()) continue;
        if (!seen.insert({param->second.name, info.dim}).second) continue;
        GroupMember member;
        member.param = param->second.name;
        member.dim = info.dim;
        auto role = a_.roles.find({member.param, info.dim});
        member.role = role != a_.roles.end() ? role->second.first
                                             : (param->second.is_buffer ? prune_role::kBuffer : prune_role::kOther);
        if (param->second.is_buffer) member.role = prune_role::kBuffer;
        member.module_kind = role != a_.roles.end() ? role->second.second : "";
        member.unit_indices.assign(roots.size(), {});
        for (std::int64_t i = 0; i < info.width; ++i) {
          auto unit = unit_of.find(a_.find(info.base + i));
          if (unit != unit_of.end()) member.unit_indices[unit->second].push_back(i);
        }
        entry.group.members.push_back(std::move(member));
      }
      for (const Value* value : a_.param_values.at(producer_param.name)) {
        for (const torch::jit::Use& use : value->uses()) {
          if (a_.reads_input.count(use.user)) entry.group.reads_graph_input = true;
        }
      }
      entry.roots = std::move(roots);
      pending.push_back(std::move(entry));
    }
    std::sort(pending.begin(), pending.end(), [](const Pending& x, const Pending& y) {
      return x.order != y.order ? x.order < y.order : x.group.key < y.group.key;
    });
    for (Pending& entry : pending) {
      a_.groups.push_back(std::move(entry.group));
      a_.group_unit_roots.push_back(std::move(entry.roots));
    }
  }

 private:
  static void collect_ifs(Block* block, std::vector<Node*>& out) {
    for (Node* node : block->nodes()) {
      if (node->kind() == c10::prim::If) out.push_back(node);
      for (Block* sub : node->blocks()) collect_ifs(sub, out);
    }
  }

  static void collect_nodes(Block* block, std::vector<Node*>& out) {
    for (Node* node : block->nodes()) {
      out.push_back(node);
      for (Block* sub : node->blocks()) collect_nodes(sub, out);
    }
  }

  bool static_value(const Value* value, int depth) const {
    if (depth > 32) return false;
    const Value* self = a_.graph->inputs().at(0);
    if (value == self) return true;
    const Node* node = value->node();
    const auto kind = node->kind();
    if (kind == c10::prim::Constant) return true;
    if (kind == c10::prim::Param) return false;
    if (kind == c10::prim::GetAttr) {
      if (node->s(torch::jit::attr::name) == "training") return false;
      if (is_tensor_type(value) || value->type()->kind() == c10::TypeKind::OptionalType) return false;
      return static_value(node->input(0), depth + 1);
    }
    if (kind == c10::aten::is_scripting) return true;
    if (!node->blocks().empty() || node->hasSideEffects()) return false;
    for (const Value* input : node->inputs()) {
      const auto input_kind = input->type()->kind();
      if (input_kind == c10::TypeKind::TensorType || input_kind == c10::TypeKind::ListType) return false;
      if (!static_value(input, depth + 1)) return false;
    }
    for (const Value* output : node->outputs()) {
      if (output->type()->kind() == c10::TypeKind::TensorType) return false;
    }
    return true;
  }

  // Replaces an If by the nodes of the block that ran; values keep their identity (and shapes).
  void inline_block(Node* node, Block* taken) {
    for (auto it = taken->nodes().begin(); it != taken->nodes().end();) {
      Node* inner = *it;
      ++it;
      inner->moveBefore(node);
    }
    for (std::size_t i = 0; i < node->outputs().size(); ++i) {
      node->output(i)->replaceAllUsesWith(taken->outputs()[i]);
    }
    forget_block_values(node);
    node->destroy();
  }

  void forget_block_values(Node* node) {
    for (Block* block : node->blocks()) {
      a_.executed_blocks.erase(block);
      for (Node* inner : block->nodes()) {
        for (Value* output : inner->outputs()) a_.shapes.erase(output);
        forget_block_values(inner);
      }
    }
    for (Value* output : node->outputs()) a_.shapes.erase(output);
  }

  void freeze_flattened(RuleContext& context, const Value* value, const std::string& reason) {
    std::vector<const Value*> tensors;
    flatten_tensors(value, tensors);
    for (const Value* tensor : tensors) context.freeze_value(tensor, reason);
  }

  bool has_tensors(const Node* node) const {
    std::vector<const Value*> tensors;
    for (const Value* input : node->inputs()) flatten_tensors(input, tensors);
    for (const Value* output : node->outputs()) {
      if (is_tensor_type(output)) return true;
    }
    return !tensors.empty();
  }

  void walk(Block* block, bool ran) {
    for (Node* node : block->nodes()) {
      if (ran) {
        visit(node);
      } else {
        visit_not_executed(node);
      }
      for (Block* sub : node->blocks()) walk(sub, ran && a_.executed_blocks.count(sub) > 0);
    }
    if (!ran) {
      RuleContext context(a_, block->return_node());
      for (const Value* output : block->outputs()) {
        if (a_.shapes.count(output) == 0) freeze_flattened(context, output, "returned by a branch that did not run");
      }
    }
  }

  void visit_not_executed(Node* node) {
    const std::string op = node->kind().toQualString();
    if (outside_module_op(node)) return;
    if (is_metadata_op(op) || node->kind() == c10::prim::GetAttr || node->kind() == c10::prim::Constant ||
        node->kind() == c10::prim::ListConstruct || node->kind() == c10::prim::TupleConstruct) {
      return;
    }
    RuleContext context(a_, node);
    std::vector<const Value*> tensors;
    for (const Value* input : node->inputs()) flatten_tensors(input, tensors);
    for (const Value* tensor : tensors) {
      if (a_.shapes.count(tensor) || a_.params.count(tensor)) {
        context.freeze_value(tensor, "read by " + a_.where(node) + " in a branch that did not run for the example input");
      }
    }
  }

  // Whether the node is inside a module analysed through one op only (PruneRules::analyse_module_by)
  // and is not that op.
  bool outside_module_op(const Node* node) const {
    auto stack = node->callstack();
    if (!stack) return false;
    for (const auto& entry : (*stack)->vec()) {
      const auto& info = std::get<2>(entry);
      if (!info || !info->class_type() || !info->class_type()->name()) continue;
      const std::string* op = a_.rules->module_op(info->class_type()->name()->name());
      if (op != nullptr) return *op != node->kind().toQualString();
    }
    return false;
  }

  void visit(Node* node) {
    if (outside_module_op(node)) return;
    const auto kind = node->kind();
    for (const Value* input : node->inputs()) {
      if (input->node()->kind() == c10::prim::Param && input != a_.graph->inputs().at(0) &&
          input->node()->owningBlock() == a_.graph->block()) {
        a_.reads_input.insert(node);
      }
    }
    RuleContext context(a_, node);
    if (kind == c10::prim::Constant) {
      if (is_tensor_type(node->output())) context.freeze_value(node->output(), "tensor constant");
      return;
    }
    // prim::Uninitialized: the placeholder of a variable of a branch that returned early; never read.
    if (kind == c10::prim::GetAttr || kind == c10::prim::ListConstruct || kind == c10::prim::TupleConstruct ||
        kind == c10::prim::Uninitialized) {
      return;
    }
    if (kind == c10::prim::If) {
      for (std::size_t b = 0; b < node->blocks().size(); ++b) {
        const Block* block = node->blocks()[b];
        if (!a_.executed_blocks.count(block)) continue;
        for (std::size_t i = 0; i < node->outputs().size(); ++i) {
          const Value* out = node->output(i);
          if (!is_tensor_like(out) || !a_.shapes.count(out)) continue;  // an Optional that was None
          context.identity_all_dims(out, block->outputs()[i]);
        }
      }
      return;
    }
    if ((kind == c10::prim::ListUnpack || kind == c10::prim::TupleUnpack) &&
        (node->input(0)->node()->kind() == c10::prim::ListConstruct ||
         node->input(0)->node()->kind() == c10::prim::TupleConstruct)) {
      const Node* construct = node->input(0)->node();
      for (std::size_t i = 0; i < node->outputs().size() && i < construct->inputs().size(); ++i) {
        if (is_tensor_type(node->output(i))) context.identity_all_dims(construct->input(i), node->output(i));
      }
      return;
    }
    if (kind == c10::prim::ListUnpack && is_split_output(node->input(0))) return;  // the split's rule maps it
    const std::string op = kind.toQualString();
    if (kind == c10::aten::__getitem__ && is_split_output(node->input(0))) return;
    if (const PruneRule* rule = a_.rules->find(op)) {
      (*rule)(context);
      return;
    }
    if (is_metadata_op(op) || !has_tensors(node)) return;
    a_.warn("no pruning rule for " + a_.where(node) + ": its tensors are frozen");
    context.freeze_all("no pruning rule for " + a_.where(node));
  }

  bool is_split_output(const Value* list) const {
    const std::string kind = list->node()->kind().toQualString();
    return a_.rules->find(kind) != nullptr && list->type()->kind() == c10::TypeKind::ListType &&
           list->node()->kind() != c10::prim::ListConstruct;
  }

  PruneAnalysis& a_;
  std::vector<std::string> param_order_;
  std::vector<const Value*> tensor_attributes_;
};

}  // namespace

DependencyGraph::DependencyGraph(std::unique_ptr<PruneAnalysis> analysis) : analysis_(std::move(analysis)) {}
DependencyGraph::~DependencyGraph() = default;

const std::vector<PruneGroup>& DependencyGraph::groups() const { return analysis_->groups; }

const PruneGroup* DependencyGraph::find_group(const std::string& name_or_key) const {
  for (const PruneGroup& group : analysis_->groups) {
    if (group.key == name_or_key) return &group;
  }
  for (const PruneGroup& group : analysis_->groups) {
    if (group.name == name_or_key) return &group;
  }
  return nullptr;
}

const std::vector<std::string>& DependencyGraph::warnings() const { return analysis_->warnings; }
std::vector<FrozenNote> DependencyGraph::frozen_notes() const { return analysis_->frozen_notes; }
const torch::jit::Module& DependencyGraph::module() const { return analysis_->module; }
std::shared_ptr<torch::jit::Graph> DependencyGraph::graph() const { return analysis_->graph; }
const std::string& DependencyGraph::model_name() const { return analysis_->model_name; }
double DependencyGraph::seconds() const { return analysis_->seconds; }

Result<std::unique_ptr<DependencyGraph>> build_dependency_graph(const torch::jit::Module& module,
                                                                const std::vector<torch::jit::IValue>& inputs,
                                                                const DependencyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto analysis = std::make_unique<PruneAnalysis>();
  analysis->model_name = options.model_name;
  if (analysis->model_name.empty()) analysis->model_name = class_base_name(module.type());
  analysis->rules = options.rules != nullptr ? options.rules : &PruneRules::registered();
  analysis->module_rules = options.module_rules != nullptr ? options.module_rules : &ModuleRules::registered();
  const std::string what = "pruning " + analysis->model_name;
  try {
    analysis->module = module.deepcopy();
    analysis->module.eval();
    auto method = analysis->module.find_method("forward");
    if (!method) return Status(ErrorCode::kInvalidArgument, what + ": the module has no forward method");
    analysis->graph = method->graph()->copy();
    torch::jit::Inline(*analysis->graph);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, what + ": cannot copy and inline the module: " + torch_error_reason(e));
  }
  PROFAGENT_RETURN_IF_ERROR(record_shapes(*analysis, inputs));
  Builder builder(*analysis);
  try {
    builder.specialise();
    builder.resolve_params();
    builder.apply_rules();
    builder.finish();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, what + ": building the dependency graph failed: " + torch_error_reason(e));
  }
  analysis->seconds = seconds_since(start);
  for (const std::string& warning : analysis->warnings) log().warn("{}: {}", what, warning);
  return std::unique_ptr<DependencyGraph>(new DependencyGraph(std::move(analysis)));
}

}  // namespace profagent::torch_tk

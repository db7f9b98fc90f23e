// RuleContext: what a pruning rule reads of its node (shapes, constants, lists) and how it couples,
// freezes and edits slots of the analysis (prune_graph.hpp).
#include <algorithm>
#include <map>
#include <set>

#include "profagent/torch/ir_constants.hpp"
#include "prune_internal.hpp"
#include "prune_ir.hpp"

namespace profagent::torch_tk {

using torch::jit::Node;
using torch::jit::Value;

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
  if (auto constant = ir::constant_int_list(node_->input(i))) return constant;
  // An int[] module attribute (ConvNeXt's Permute reads `self.dims`).
  auto attr = module_attribute(node_->input(i));
  if (!attr || !attr->isIntList()) return std::nullopt;
  return attr->toIntVector();
}

std::optional<c10::IValue> RuleContext::module_attribute(const Value* value) const {
  if (value->node()->kind() != c10::prim::GetAttr) return std::nullopt;
  auto path = module_path_of(value->node()->input(0), analysis_.graph->inputs().at(0));
  if (!path) return std::nullopt;
  return submodule(analysis_.module, *path).attr(value->node()->s(torch::jit::attr::name));
}

std::optional<bool> RuleContext::bool_input(std::size_t i) const {
  if (i >= node_->inputs().size()) return std::nullopt;
  return ir::constant_bool(node_->input(i));
}

std::optional<std::int64_t> RuleContext::int_value(std::size_t i) const {
  if (auto constant = int_input(i)) return constant;
  if (i >= node_->inputs().size()) return std::nullopt;
  auto attr = module_attribute(node_->input(i));
  if (!attr || !attr->isInt()) return std::nullopt;
  return attr->toInt();
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
      "prim::max", "aten::floor", "aten::ceil", "aten::__derive_index", "prim::unchecked_cast", "prim::ListUnpack"};
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
      spec.old_value = submodule(analysis_.module, *path).attr(spec.attr_name).toInt();
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

bool RuleContext::pin_int(const Value* value, std::int64_t keep, SlotRef source) {
  const std::int64_t slot_id = analysis_.slot(source.value, source.dim);
  if (slot_id < 0 || !value->type()->cast<c10::IntType>() || value->uses().empty()) return false;
  std::vector<IntEditSpec> pins;
  for (const torch::jit::Use& use : value->uses()) {
    if (use.user->kind() == c10::prim::Return || !use.user->blocks().empty()) return false;
    IntEditSpec spec;
    spec.node = use.user;
    spec.input = use.offset;
    spec.slot = slot_id;
    spec.old_value = keep;
    spec.pin = true;
    pins.push_back(spec);
  }
  analysis_.int_edits.insert(analysis_.int_edits.end(), pins.begin(), pins.end());
  return true;
}

void RuleContext::warn(const std::string& message) { analysis_.warn(message); }

}  // namespace profagent::torch_tk

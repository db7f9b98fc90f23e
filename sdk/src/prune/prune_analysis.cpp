// PruneAnalysis: the union-find of slot atoms, freeze reasons and warnings of one dependency analysis,
// and where a node is in the model (prune_internal.hpp).
#include "prune_internal.hpp"

namespace profagent::torch_tk {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

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

}  // namespace profagent::torch_tk

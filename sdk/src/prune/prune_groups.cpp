// Groups from the union-find classes of a finished analysis: the units a producer parameter's dim can
// lose together, with every member dim they touch (docs/pruning.md).
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "prune_internal.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Value;

// Per atom (read at roots): whether its class is frozen, the first reason found, and whether it
// holds a producer dim of a parameter; and the producer slots in parameter order.
struct Classes {
  std::vector<char> frozen;
  std::vector<int> reason;
  std::vector<char> has_producer;
  std::vector<std::int64_t> producer_slots;

  bool prunable(std::int64_t root) const { return has_producer[root] && !frozen[root]; }
};

// A group before the groups are put in graph order.
struct Pending {
  std::size_t order;
  PruneGroup group;
  std::vector<std::int64_t> roots;
};

// Value-level freezes cover every slot of the value, including those created after the request.
void apply_value_freezes(PruneAnalysis& a) {
  for (const auto& [value, reason_id] : a.value_freezes) {
    auto range = a.slots_of_value.equal_range(value);
    for (auto it = range.first; it != range.second; ++it) {
      const SlotInfo& info = a.slots[it->second];
      for (std::int64_t i = 0; i < info.width; ++i) a.freeze_atom(info.base + i, reason_id);
    }
  }
}

void find_frozen_classes(PruneAnalysis& a, Classes& classes) {
  const auto atoms = static_cast<std::int64_t>(a.parent.size());
  classes.frozen.assign(static_cast<std::size_t>(atoms), 0);
  classes.reason.assign(static_cast<std::size_t>(atoms), -1);
  for (std::int64_t atom = 0; atom < atoms; ++atom) {
    if (!a.frozen[atom]) continue;
    const std::int64_t root = a.find(atom);
    classes.frozen[root] = 1;
    if (classes.reason[root] < 0) classes.reason[root] = a.freeze_reason.at(atom);
  }
}

// Candidate units: classes holding a producer dim of a parameter.
void find_producers(PruneAnalysis& a, const std::vector<std::string>& param_order, Classes& classes) {
  classes.has_producer.assign(classes.frozen.size(), 0);
  for (const std::string& name : param_order) {
    for (const Value* value : a.param_values.at(name)) {
      auto shape = a.shape(value);
      for (std::size_t d = 0; shape && d < shape->size(); ++d) {
        auto role = a.roles.find({name, static_cast<std::int64_t>(d)});
        if (role == a.roles.end() || role->second.first != prune_role::kProducer) continue;
        const std::int64_t id = a.slot(value, static_cast<std::int64_t>(d));
        if (id < 0) continue;
        classes.producer_slots.push_back(id);
        const SlotInfo& info = a.slots[id];
        for (std::int64_t i = 0; i < info.width; ++i) classes.has_producer[a.find(info.base + i)] = 1;
      }
    }
  }
}

// How many candidate units each freeze reason kept from being pruned, most first.
void note_frozen_units(PruneAnalysis& a, const Classes& classes) {
  const auto atoms = static_cast<std::int64_t>(classes.frozen.size());
  std::map<int, std::int64_t> frozen_units;
  for (std::int64_t atom = 0; atom < atoms; ++atom) {
    if (a.find(atom) == atom && classes.has_producer[atom] && classes.frozen[atom])
      frozen_units[classes.reason[atom]] += 1;
  }
  for (const auto& [reason_id, count] : frozen_units) {
    a.frozen_notes.push_back(FrozenNote{a.reasons[static_cast<std::size_t>(reason_id)], count});
  }
  std::sort(a.frozen_notes.begin(), a.frozen_notes.end(),
            [](const FrozenNote& x, const FrozenNote& y) { return x.units > y.units; });
}

// Signatures: the slots each prunable unit (a root) touches; the units sharing one form a group.
std::map<std::vector<std::int64_t>, std::vector<std::int64_t>> units_by_signature(PruneAnalysis& a,
                                                                                   const Classes& classes) {
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> signature;
  for (std::int64_t id = 0; id < static_cast<std::int64_t>(a.slots.size()); ++id) {
    const SlotInfo& info = a.slots[id];
    for (std::int64_t i = 0; i < info.width; ++i) {
      const std::int64_t root = a.find(info.base + i);
      if (!classes.prunable(root)) continue;
      auto& slots = signature[root];
      if (slots.empty() || slots.back() != id) slots.push_back(id);
    }
  }
  std::map<std::vector<std::int64_t>, std::vector<std::int64_t>> by_signature;
  for (const auto& [root, slots] : signature) by_signature[slots].push_back(root);
  return by_signature;
}

// The parameter dims the group's slots hold, each with the indices every unit owns in it.
void add_members(PruneAnalysis& a, const std::vector<std::int64_t>& slots, const std::vector<std::int64_t>& roots,
                 PruneGroup& group) {
  std::unordered_map<std::int64_t, std::size_t> unit_of;
  for (std::size_t u = 0; u < roots.size(); ++u) unit_of[roots[u]] = u;
  std::set<std::pair<std::string, std::int64_t>> seen;
  for (std::int64_t id : slots) {
    const SlotInfo& info = a.slots[id];
    auto param = a.params.find(info.value);
    if (param == a.params.end()) continue;
    if (!seen.insert({param->second.name, info.dim}).second) continue;
    GroupMember member;
    member.param = param->second.name;
    member.dim = info.dim;
    auto role = a.roles.find({member.param, info.dim});
    member.role = role != a.roles.end() ? role->second.first
                                        : (param->second.is_buffer ? prune_role::kBuffer : prune_role::kOther);
    if (param->second.is_buffer) member.role = prune_role::kBuffer;
    member.module_kind = role != a.roles.end() ? role->second.second : "";
    member.unit_indices.assign(roots.size(), {});
    for (std::int64_t i = 0; i < info.width; ++i) {
      auto unit = unit_of.find(a.find(info.base + i));
      if (unit != unit_of.end()) member.unit_indices[unit->second].push_back(i);
    }
    group.members.push_back(std::move(member));
  }
}

// The group of the units (roots) sharing `slots`, named after its first producer slot in parameter
// order; nullopt when none of the slots is a producer's.
std::optional<Pending> make_group(PruneAnalysis& a, const std::vector<std::int64_t>& slots,
                                  std::vector<std::int64_t> roots, const Classes& classes,
                                  const std::unordered_map<std::int64_t, std::size_t>& producer_order) {
  Pending entry;
  entry.order = classes.producer_slots.size();
  std::int64_t producer_slot = -1;
  for (std::int64_t id : slots) {
    auto found = producer_order.find(id);
    if (found != producer_order.end() && found->second < entry.order) {
      entry.order = found->second;
      producer_slot = id;
    }
  }
  if (producer_slot < 0) return std::nullopt;
  // Units in the order of their first index in the producer's dim.
  const SlotInfo& producer = a.slots[producer_slot];
  std::unordered_map<std::int64_t, std::int64_t> first_index;
  for (std::int64_t i = 0; i < producer.width; ++i) first_index.emplace(a.find(producer.base + i), i);
  std::sort(roots.begin(), roots.end(),
            [&](std::int64_t x, std::int64_t y) { return first_index.at(x) < first_index.at(y); });
  const ParamRef& producer_param = a.params.at(producer.value);
  PruneGroup& group = entry.group;
  group.name = producer_param.module_path.empty() ? "(root)" : producer_param.module_path;
  group.producer = producer_param.name;
  group.producer_dim = producer.dim;
  group.units = static_cast<std::int64_t>(roots.size());
  for (std::int64_t root : roots) group.unit_ids.push_back(first_index.at(root));
  group.key = producer_param.name + ":" + std::to_string(producer.dim) + "@" + std::to_string(group.unit_ids.front());
  add_members(a, slots, roots, group);
  for (const Value* value : a.param_values.at(producer_param.name)) {
    for (const torch::jit::Use& use : value->uses()) {
      if (a.reads_input.count(use.user)) group.reads_graph_input = true;
    }
  }
  entry.roots = std::move(roots);
  return entry;
}

}  // namespace

void build_groups(PruneAnalysis& a, const std::vector<std::string>& param_order) {
  apply_value_freezes(a);
  Classes classes;
  find_frozen_classes(a, classes);
  find_producers(a, param_order, classes);
  note_frozen_units(a, classes);
  auto by_signature = units_by_signature(a, classes);
  // One group per signature, ordered by its first producer in graph order.
  std::unordered_map<std::int64_t, std::size_t> producer_order;
  for (std::size_t k = 0; k < classes.producer_slots.size(); ++k) producer_order.emplace(classes.producer_slots[k], k);
  std::vector<Pending> pending;
  for (auto& [slots, roots] : by_signature) {
    if (auto entry = make_group(a, slots, std::move(roots), classes, producer_order)) pending.push_back(std::move(*entry));
  }
  std::sort(pending.begin(), pending.end(), [](const Pending& x, const Pending& y) {
    return x.order != y.order ? x.order < y.order : x.group.key < y.group.key;
  });
  for (Pending& entry : pending) {
    a.groups.push_back(std::move(entry.group));
    a.group_unit_roots.push_back(std::move(entry.roots));
  }
}

}  // namespace profagent::torch_tk

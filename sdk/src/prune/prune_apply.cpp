// Choosing units, applying edits and building the output module (prune_apply.hpp, docs/pruning.md).
#include "profagent/prune/prune_apply.hpp"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <unordered_set>

#include "profagent/clock.hpp"
#include "profagent/log.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/profile/static_profile.hpp"
#include "prune_internal.hpp"
#include "prune_ir.hpp"
#include "prune_method_edits.hpp"
#include "prune_module_types.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Node;
using torch::jit::Value;

bool listed(const std::vector<std::string>& names, const PruneGroup& group) {
  return std::find(names.begin(), names.end(), group.name) != names.end() ||
         std::find(names.begin(), names.end(), group.key) != names.end();
}

// Why the parameters of `layer` are in no group: the freeze reasons of its weight's output dim.
std::string why_frozen(PruneAnalysis& a, const std::string& layer) {
  auto values = a.param_values.find(layer + ".weight");
  if (values == a.param_values.end()) return "it has no parameter 'weight' used by the forward pass";
  std::set<std::string> reasons;
  for (const Value* value : values->second) {
    auto slot = a.slot_index.find({value, 0});
    if (slot == a.slot_index.end()) continue;
    const SlotInfo& info = a.slots[slot->second];
    for (std::int64_t i = 0; i < info.width && reasons.size() < 3; ++i) {
      const std::int64_t root = a.find(info.base + i);
      for (std::int64_t atom = 0; atom < static_cast<std::int64_t>(a.parent.size()) && reasons.size() < 3; ++atom) {
        if (a.frozen[atom] && a.find(atom) == root) {
          reasons.insert(a.reasons[static_cast<std::size_t>(a.freeze_reason.at(atom))]);
          break;
        }
      }
    }
  }
  if (reasons.empty()) return "its output dim is not a producer of any group";
  std::string text = "frozen: ";
  for (const std::string& reason : reasons) text += (text.size() > 8 ? "; " : "") + reason;
  return text;
}

Result<torch::Tensor> l1_scores(const ImportanceGroup& group, GroupReduction reduction) {
  return reduce_members(group, reduction, {kRoleProducer},
                        [](const ImportanceMember& member, std::int64_t units) -> Result<torch::Tensor> {
                          return sum_into_units(sum_over_other_dims(member.weight.abs(), member.dim), member, units);
                        });
}

std::int64_t units_to_keep(std::int64_t units, double ratio, const PruneOptions& options) {
  std::int64_t keep = units - static_cast<std::int64_t>(std::floor(static_cast<double>(units) * ratio + 1e-9));
  if (options.round_to > 1) keep = (keep + options.round_to - 1) / options.round_to * options.round_to;
  keep = std::max<std::int64_t>({keep, options.min_width, 1});
  return std::min(keep, units);
}

}  // namespace

Json PruneOptions::to_json() const {
  Json json{{"ratio", ratio},
            {"layer_ratios", layer_ratios},
            {"round_to", round_to},
            {"min_width", min_width},
            {"ignored_layers", ignored_layers},
            {"ignore_input_layer", ignore_input_layer},
            {"reduction", to_string(reduction)},
            {"criterion", criterion ? "custom" : "l1"}};
  return json;
}

Json PruneHistory::to_json() const {
  Json list = Json::array();
  for (const GroupDecision& group : groups) {
    list.push_back(Json{{"key", group.key}, {"name", group.name}, {"units", group.units}, {"removed", group.removed}});
  }
  return Json{{"format", "profagent.prune_history"}, {"version", 1}, {"model", model}, {"options", options},
              {"groups", std::move(list)}};
}

Result<PruneHistory> PruneHistory::from_json(const Json& json) {
  if (!json.is_object() || json.value("format", "") != "profagent.prune_history") {
    return Status(ErrorCode::kParseError, "not a pruning history (format must be 'profagent.prune_history')");
  }
  PruneHistory history;
  try {
    history.model = json.value("model", "");
    history.options = json.value("options", Json::object());
    for (const Json& group : json.at("groups")) {
      GroupDecision decision;
      decision.key = group.at("key").get<std::string>();
      decision.name = group.value("name", "");
      decision.units = group.value("units", std::int64_t{0});
      decision.removed = group.at("removed").get<std::vector<std::int64_t>>();
      history.groups.push_back(std::move(decision));
    }
  } catch (const std::exception& e) {
    return Status(ErrorCode::kParseError, std::string("malformed pruning history: ") + e.what());
  }
  return history;
}

PruneOptions PruneHistory::replay_options() const {
  PruneOptions options;
  std::map<std::string, std::vector<std::int64_t>> removal;
  for (const GroupDecision& group : groups) removal[group.key] = group.removed;
  options.removal = std::move(removal);
  return options;
}

Json PruneResult::summary() const {
  Json frozen_json = Json::array();
  for (const FrozenNote& note : frozen) frozen_json.push_back(Json{{"reason", note.reason}, {"units", note.units}});
  return Json{{"groups", groups},
              {"pruned_groups", pruned_groups},
              {"params_before", params_before},
              {"params_after", params_after},
              {"macs_before", macs_before},
              {"macs_after", macs_after},
              {"graph_seconds", graph_seconds},
              {"prune_seconds", prune_seconds},
              {"warnings", warnings},
              {"frozen", std::move(frozen_json)}};
}

ImportanceGroup to_importance_group(const DependencyGraph& graph, const PruneGroup& group) {
  const PruneAnalysis& a = graph.analysis();
  ImportanceGroup out;
  out.name = group.name;
  out.units = group.units;
  for (const GroupMember& member : group.members) {
    ImportanceMember m;
    m.param = member.param;
    m.weight = a.params.at(a.param_values.at(member.param).front()).tensor;
    m.dim = member.dim;
    m.unit_indices = member.unit_indices;
    m.role = member.role;
    m.module_kind = member.module_kind;
    out.members.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<GroupDecision>> choose_units(const DependencyGraph& graph, const PruneOptions& options) {
  PruneAnalysis& a = const_cast<DependencyGraph&>(graph).analysis();
  const std::string what = "pruning " + a.model_name;
  std::vector<GroupDecision> decisions;
  if (options.removal) {
    for (const auto& [key, removed] : *options.removal) {
      const PruneGroup* group = graph.find_group(key);
      if (group == nullptr) {
        return Status(ErrorCode::kNotFound, what + ": the history names group '" + key +
                                                "', which this model does not have (a different model or rules?)");
      }
      for (std::int64_t id : removed) {
        if (std::find(group->unit_ids.begin(), group->unit_ids.end(), id) == group->unit_ids.end()) {
          return Status(ErrorCode::kInvalidArgument,
                        what + ": group '" + key + "' has no unit " + std::to_string(id));
        }
      }
      if (static_cast<std::int64_t>(removed.size()) >= group->units) {
        return Status(ErrorCode::kInvalidArgument, what + ": group '" + key + "' would lose all its units");
      }
      decisions.push_back(GroupDecision{group->key, group->name, group->units, removed});
    }
    return decisions;
  }
  for (const auto& [layer, ratio] : options.layer_ratios) {
    if (ratio < 0.0 || ratio >= 1.0) {
      return Status(ErrorCode::kInvalidArgument,
                    what + ": ratio " + std::to_string(ratio) + " of layer '" + layer + "' is not in [0, 1)");
    }
    if (graph.find_group(layer) == nullptr) {
      return Status(ErrorCode::kNotFound,
                    what + ": the plan prunes layer '" + layer + "', which is in no prunable group (" +
                        why_frozen(a, layer) + ")");
    }
  }
  if (options.ratio < 0.0 || options.ratio >= 1.0) {
    return Status(ErrorCode::kInvalidArgument, what + ": ratio " + std::to_string(options.ratio) + " is not in [0, 1)");
  }
  for (const PruneGroup& group : graph.groups()) {
    double ratio = options.ratio;
    auto by_name = options.layer_ratios.find(group.name);
    auto by_key = options.layer_ratios.find(group.key);
    const bool planned = by_name != options.layer_ratios.end() || by_key != options.layer_ratios.end();
    if (by_key != options.layer_ratios.end()) {
      ratio = by_key->second;
    } else if (by_name != options.layer_ratios.end()) {
      ratio = by_name->second;
    }
    if (!planned && (listed(options.ignored_layers, group) || (options.ignore_input_layer && group.reads_graph_input))) {
      continue;
    }
    const std::int64_t keep = units_to_keep(group.units, ratio, options);
    if (keep >= group.units) continue;
    ImportanceGroup importance = to_importance_group(graph, group);
    Result<torch::Tensor> scores =
        options.criterion ? options.criterion(importance, options.reduction) : l1_scores(importance, options.reduction);
    if (!scores.is_ok()) {
      return Status(scores.status().code(), what + ": scoring group '" + group.name + "': " + scores.status().message());
    }
    PROFAGENT_RETURN_IF_ERROR(validate_scores(importance, *scores));
    // Lowest scores go; ties by unit order, so the choice is deterministic.
    torch::Tensor values = scores->to(torch::kFloat64).contiguous();
    std::vector<std::int64_t> order(static_cast<std::size_t>(group.units));
    std::iota(order.begin(), order.end(), 0);
    const double* data = values.data_ptr<double>();
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t x, std::int64_t y) { return data[x] < data[y]; });
    GroupDecision decision{group.key, group.name, group.units, {}};
    for (std::int64_t k = 0; k < group.units - keep; ++k) {
      decision.removed.push_back(group.unit_ids[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])]);
    }
    std::sort(decision.removed.begin(), decision.removed.end());
    decisions.push_back(std::move(decision));
  }
  return decisions;
}

namespace {

// The edited root: a new class with the same attributes (submodules, parameters, buffers, training)
// whose forward is the edited inlined graph. A new class because scripted types are shared: the
// original's class still serves the original model.
torch::jit::Module make_output_module(PruneAnalysis& a) {
  auto old_type = a.module.type();
  auto cu = old_type->compilation_unit();
  const std::string base = old_type->name() ? old_type->name()->name() : "Model";
  const c10::QualifiedName name = cu->mangle(c10::QualifiedName("__torch__.profagent_pruned." + base));
  auto type = c10::ClassType::create(name, cu, /*is_module=*/true);
  for (std::size_t i = 0; i < old_type->numAttributes(); ++i) {
    type->addAttribute(old_type->getAttributeName(i), old_type->getAttribute(i), old_type->is_parameter(i),
                       old_type->is_buffer(i));
  }
  for (std::size_t i = 0; i < old_type->numConstants(); ++i) {
    type->addConstant(old_type->getConstantName(i), old_type->getConstant(i));
  }
  cu->register_type(type);
  auto object = c10::ivalue::Object::create(c10::StrongTypePtr(cu, type), old_type->numAttributes());
  for (std::size_t i = 0; i < old_type->numAttributes(); ++i) object->setSlot(i, a.module._ivalue()->getSlot(i));
  a.graph->inputs().at(0)->setType(type);
  torch::jit::Function* forward = cu->create_function(c10::QualifiedName(name, "forward"), a.graph);
  type->addMethod(forward);
  return torch::jit::Module(object);
}

// The fallback output's ints: each one rewritten in the analysed (inlined) graph; the elements of one
// int[] use are rebuilt once with all their changes.
void edit_analysed_graph(PruneAnalysis& a, const std::vector<std::pair<const IntEditSpec*, std::int64_t>>& ints) {
  std::map<std::pair<Node*, std::size_t>, std::vector<std::int64_t>> list_edits;
  for (const auto& [spec, value] : ints) {
    if (spec->element >= 0) {
      auto [entry, inserted] = list_edits.try_emplace({spec->node, spec->input});
      if (inserted) entry->second = torch::jit::toIValue(spec->node->input(spec->input))->toIntVector();
      entry->second[static_cast<std::size_t>(spec->element)] = value;
      continue;
    }
    torch::jit::WithInsertPoint point(spec->node);
    spec->node->replaceInput(spec->input, a.graph->insertConstant(value));
  }
  for (const auto& [use, ints_of_use] : list_edits) {
    torch::jit::WithInsertPoint point(use.first);
    use.first->replaceInput(use.second, a.graph->insertConstant(c10::IValue(ints_of_use)));
  }
  torch::jit::EliminateDeadCode(a.graph);
}

}  // namespace

Result<torch::jit::Module> apply_pruning(DependencyGraph& graph, const std::vector<GroupDecision>& decisions) {
  PruneAnalysis& a = graph.analysis();
  const std::string what = "pruning " + a.model_name;
  // Removed classes of atoms.
  std::unordered_set<std::int64_t> removed_roots;
  for (const GroupDecision& decision : decisions) {
    std::size_t index = a.groups.size();
    for (std::size_t g = 0; g < a.groups.size(); ++g) {
      if (a.groups[g].key == decision.key) index = g;
    }
    if (index == a.groups.size()) return Status(ErrorCode::kNotFound, what + ": no group '" + decision.key + "'");
    const PruneGroup& group = a.groups[index];
    for (std::int64_t id : decision.removed) {
      auto at = std::find(group.unit_ids.begin(), group.unit_ids.end(), id);
      if (at == group.unit_ids.end()) {
        return Status(ErrorCode::kInvalidArgument, what + ": group '" + group.key + "' has no unit " + std::to_string(id));
      }
      removed_roots.insert(a.group_unit_roots[index][static_cast<std::size_t>(at - group.unit_ids.begin())]);
    }
  }
  // Kept indices of every slot that loses some.
  std::vector<std::vector<std::int64_t>> kept(a.slots.size());
  std::vector<char> changed(a.slots.size(), 0);
  std::vector<std::int64_t> new_width(a.slots.size(), 0);
  for (std::size_t s = 0; s < a.slots.size(); ++s) {
    const SlotInfo& info = a.slots[s];
    for (std::int64_t i = 0; i < info.width; ++i) {
      if (!removed_roots.count(a.find(info.base + i))) kept[s].push_back(i);
    }
    new_width[s] = static_cast<std::int64_t>(kept[s].size());
    changed[s] = new_width[s] != info.width;
  }
  try {
    torch::NoGradGuard no_grad;
    // Parameters and buffers: slice every changed dim, set the new tensor on the owning instance.
    std::map<std::string, ModuleEdit> module_edits;
    for (const auto& [name, values] : a.param_values) {
      const ParamRef& ref = a.params.at(values.front());
      torch::Tensor tensor = ref.tensor;
      bool any = false;
      for (std::int64_t d = 0; d < tensor.dim(); ++d) {
        auto slot = a.slot_index.find({values.front(), d});
        if (slot == a.slot_index.end() || !changed[static_cast<std::size_t>(slot->second)]) continue;
        auto index = torch::tensor(kept[static_cast<std::size_t>(slot->second)], torch::kLong);
        tensor = tensor.index_select(d, index);
        any = true;
      }
      if (!any) continue;
      tensor = tensor.contiguous().detach();
      tensor.set_requires_grad(ref.tensor.requires_grad());
      torch::jit::Module owner = submodule(a.module, ref.module_path);
      owner._ivalue()->setAttr(ref.attr, tensor);
      auto [edit, inserted] = module_edits.try_emplace(ref.module_path);
      if (inserted) {
        edit->second.module = owner;
        edit->second.path = ref.module_path;
      }
      edit->second.old_shapes[ref.attr] = ref.tensor.sizes().vec();
      edit->second.new_shapes[ref.attr] = tensor.sizes().vec();
    }
    // Module attributes that follow their parameters (class rules).
    for (auto& [path, edit] : module_edits) {
      auto type = edit.module.type();
      if (!type->name()) continue;
      edit.own_type = !a.origins.empty();
      if (const ModuleRule* rule = a.module_rules->find(type->name()->name())) (*rule)(edit);
    }
    // Graph ints. An int read from a module attribute follows by setting the attribute; the others are
    // rewritten in the code of the module each came from, or, where that cannot be, in the analysed
    // graph, which then becomes the output.
    std::vector<std::pair<const IntEditSpec*, std::int64_t>> ints;
    for (const IntEditSpec& spec : a.int_edits) {
      const std::size_t s = static_cast<std::size_t>(spec.slot);
      const std::int64_t value = spec.pin ? spec.old_value : new_width[s] * spec.numerator / spec.denominator;
      if (!changed[s] || (!spec.pin && value == spec.old_value)) continue;
      ints.emplace_back(&spec, value);
      if (!spec.attr_name.empty()) {
        submodule(a.module, spec.attr_module)._ivalue()->setAttr(spec.attr_name, c10::IValue(value));
      }
    }
    MethodIntEdits method_edits;
    std::string unmapped = a.origins.empty() ? a.inline_reason : "";
    for (const auto& [spec, value] : ints) {
      if (unmapped.empty() && spec->attr_name.empty()) unmapped = method_edits.add(*spec, value, a);
    }
    if (unmapped.empty()) unmapped = method_edits.check();
    if (unmapped.empty()) {
      method_edits.apply();
      remove_tags(a.origins);
      method_edits.eliminate_dead_code();
      return a.module;
    }
    log().warn("{}: the pruned model is one inlined forward, not the original modules: {}", what, unmapped);
    edit_analysed_graph(a, ints);
    return make_output_module(a);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, what + ": applying the edits failed: " + torch_error_reason(e));
  }
}

std::vector<PruneShape> output_shapes(const c10::IValue& output) {
  std::vector<PruneShape> shapes;
  for (const torch::Tensor& tensor : output_tensors(output)) shapes.push_back(tensor.sizes().vec());
  return shapes;
}

namespace {


std::string shapes_text(const std::vector<PruneShape>& shapes) {
  std::string text;
  for (const PruneShape& shape : shapes) {
    text += text.empty() ? "[" : ", [";
    for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
    text += "]";
  }
  return text;
}

}  // namespace

Result<torch::jit::Module> round_trip(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                                      const std::vector<PruneShape>& expected, const std::string& model_name) {
  const std::string what = "pruning " + model_name;
  torch::jit::Module loaded;
  try {
    std::stringstream stream;
    module.save(stream);
    stream.seekg(0);
    loaded = torch::jit::load(stream);
    loaded.eval();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, what + ": the pruned model does not save and load: " + torch_error_reason(e));
  }
  if (inputs.empty()) return loaded;
  std::vector<PruneShape> shapes;
  try {
    torch::NoGradGuard no_grad;
    shapes = output_shapes(loaded.forward(inputs));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, what + ": the pruned model's forward fails: " + torch_error_reason(e));
  }
  if (shapes != expected) {
    return Status(ErrorCode::kInternal, what + ": the pruned model's outputs have shapes " + shapes_text(shapes) +
                                            " instead of " + shapes_text(expected));
  }
  return loaded;
}

}  // namespace profagent::torch_tk

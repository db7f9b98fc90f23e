// The static profile of a traced graph: parameters, MACs, elements and activation bytes per layer,
// from the counting rules (mac_rules.cpp) and the graph's attributes and shapes.
#include "profagent/profile/static_profile.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <unordered_set>
#include <utility>

#include "mac_counting.hpp"
#include "profagent/clock.hpp"
#include "profagent/profile/packed_weights.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Node;
using torch::jit::Value;

std::optional<Shape> complete_shape(const Value* value) {
  auto type = value->type()->cast<c10::TensorType>();
  if (!type) return std::nullopt;
  auto sizes = type->sizes().concrete_sizes();
  if (!sizes) return std::nullopt;
  return Shape(sizes->begin(), sizes->end());
}

std::string layer_name(const std::string& path) {
  return path.empty() ? kRootLayer : path;
}

std::string owner_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

// The longest common module prefix of two paths ("a.b.c", "a.b.d" → "a.b").
std::string common_prefix(const std::string& a, const std::string& b) {
  std::size_t end = 0;
  for (std::size_t i = 0;; ++i) {
    const bool a_done = i == a.size() || a[i] == '.';
    const bool b_done = i == b.size() || b[i] == '.';
    if (a_done && b_done) {
      end = i;
      if (i == a.size() || i == b.size()) break;
      continue;
    }
    if (a_done || b_done || a[i] != b[i]) break;
  }
  return a.substr(0, end);
}

bool is_prim(const Node* node) {
  return node->kind().is_prim();
}

bool has_tensor_output(const Node* node) {
  for (const Value* out : node->outputs()) {
    if (out->type()->cast<c10::TensorType>()) return true;
  }
  return false;
}

// Ops through which a parameter is still "the parameter" (addmm(b, x, t(w)) reads w).
bool passes_parameter_through(const Node* node) {
  static const std::unordered_set<std::string> kViews = {
      "aten::t",          "aten::transpose", "aten::permute", "aten::view",      "aten::reshape",
      "aten::contiguous", "aten::to",        "aten::expand",  "aten::unsqueeze", "aten::squeeze",
      "aten::flatten",    "aten::detach",    "aten::select",  "aten::slice",     "aten::numpy_T",
      "aten::type_as",    "aten::alias",     "aten::mT"};
  return node->inputs().size() >= 1 && kViews.count(node->kind().toQualString()) > 0;
}

// What the profiler knows about the traced graph: parameters and buffers read through prim::GetAttr
// chains from the module input, and every value's shape.
class GraphFacts : public ValueFacts {
 public:
  explicit GraphFacts(const TracedModel& traced) : traced_(traced) {}

  void resolve_attributes() {
    const Value* self = traced_.graph->inputs().at(0);
    for (const Node* node : traced_.graph->nodes()) {
      if (node->kind() != c10::prim::GetAttr) continue;
      const bool tensor_attribute = node->output()->type()->cast<c10::TensorType>() != nullptr;
      if (!tensor_attribute && !node->output()->type()->cast<c10::ClassType>()) continue;
      std::vector<std::string> names;
      const Value* value = node->output();
      while (value != self && value->node()->kind() == c10::prim::GetAttr) {
        names.push_back(value->node()->s(torch::jit::attr::name));
        value = value->node()->input(0);
      }
      if (value != self) continue;  // an attribute of something else than the module
      std::reverse(names.begin(), names.end());
      c10::IValue owner = traced_.module._ivalue();
      std::string path;
      for (std::size_t i = 0; i + 1 < names.size(); ++i) {
        owner = owner.toObject()->getAttr(names[i]);
        if (!owner.isObject()) break;
        path += (path.empty() ? "" : ".") + names[i];
      }
      if (!owner.isObject()) continue;
      c10::IValue attribute = owner.toObject()->getAttr(names.back());
      if (!tensor_attribute) {
        // A quantized op's packed weights: the parameter it reads, shaped like its unpacked weight.
        if (!is_packed_params(attribute)) continue;
        auto packed = unpack_packed_params(attribute);
        if (packed) attributes_[node->output()] = Attribute{path, Shape(packed->weight.sizes().vec())};
        continue;
      }
      if (!attribute.isTensor() || !attribute.toTensor().defined()) continue;
      attributes_[node->output()] = Attribute{path, Shape(attribute.toTensor().sizes().vec())};
    }
  }

  std::optional<Shape> shape(const Value* value) const override {
    auto found = attributes_.find(value);
    if (found != attributes_.end()) return found->second.shape;
    if (auto complete = complete_shape(value)) return complete;
    auto inferred = inferred_.find(value);
    if (inferred != inferred_.end()) return inferred->second;
    return std::nullopt;
  }

  // A shape a rule computed for a value whose traced type has none, so that later ops can use it.
  void infer(const Value* value, Shape shape) { inferred_[value] = std::move(shape); }

  bool reads_parameter(const Value* value) const override {
    if (value->node()->kind() == c10::prim::ListConstruct) {
      for (const Value* element : value->node()->inputs()) {
        if (owner(element)) return true;
      }
      return false;
    }
    return owner(value) != nullptr;
  }

  // The module owning the parameter or buffer `value` reads (through views), or nullptr.
  const std::string* owner(const Value* value) const {
    for (int depth = 0; depth < 16; ++depth) {
      auto found = attributes_.find(value);
      if (found != attributes_.end()) return &found->second.owner;
      if (!passes_parameter_through(value->node())) return nullptr;
      value = value->node()->input(0);
    }
    return nullptr;
  }

 private:
  struct Attribute {
    std::string owner;
    Shape shape;
  };
  const TracedModel& traced_;
  std::unordered_map<const Value*, Attribute> attributes_;
  std::unordered_map<const Value*, Shape> inferred_;
};

// ---------------------------------------------------------------------------------------------------
// Aggregation

struct LayerAccumulator {
  LayerProfile profile;
  std::map<std::string, std::int64_t> op_kind_macs;  // by the op's kind, to name the layer
  std::map<std::string, std::int64_t> op_kind_elements;
  std::string first_op_kind;
};

class Profiler {
 public:
  Profiler(const TracedModel& traced, const OpRules& rules)
      : traced_(traced), rules_(rules), facts_(traced) {}

  Result<StaticProfile> run() {
    facts_.resolve_attributes();
    count_parameters();
    for (const Node* node : traced_.graph->nodes()) PROFAGENT_RETURN_IF_ERROR(count_node(node));
    return finish();
  }

 private:
  LayerAccumulator& layer(const std::string& path) {
    auto found = index_.find(path);
    if (found != index_.end()) return layers_[found->second];
    index_[path] = layers_.size();
    layers_.push_back(LayerAccumulator{});
    layers_.back().profile.name = layer_name(path);
    return layers_.back();
  }

  // Parameters and buffers by owner, each tensor once even when two names share it (tied weights).
  void count_parameters() {
    std::unordered_set<const c10::TensorImpl*> seen;
    for (const auto& entry : traced_.module.named_parameters(/*recurse=*/true)) {
      if (!seen.insert(entry.value.unsafeGetTensorImpl()).second) continue;
      const std::int64_t bytes = entry.value.numel() * static_cast<std::int64_t>(entry.value.element_size());
      pending_params_[owner_of(entry.name)].first += entry.value.numel();
      pending_params_[owner_of(entry.name)].second += bytes;
      profile_.params += entry.value.numel();
      profile_.param_bytes += bytes;
    }
    count_packed_weights();
    for (const auto& entry : traced_.module.named_buffers(/*recurse=*/true)) {
      if (!seen.insert(entry.value.unsafeGetTensorImpl()).second) continue;
      const std::int64_t bytes = entry.value.numel() * static_cast<std::int64_t>(entry.value.element_size());
      pending_buffers_[owner_of(entry.name)] += bytes;
      profile_.buffer_bytes += bytes;
    }
  }

  // Weights packed inside quantized ops' parameters count as parameters of the module holding them:
  // their unpacked elements, at their own element size (int8: 1 byte; the bias stays fp32).
  void count_packed_weights() {
    std::int64_t objects = 0;
    for (const auto& [path, own] : packed_weights_by_module(traced_.module)) {
      pending_params_[path].first += own.elements;
      pending_params_[path].second += own.bytes;
      profile_.params += own.elements;
      profile_.param_bytes += own.bytes;
      objects += own.objects;
    }
    profile_.param_counting = param_counting_text(objects);
  }

  // Rule 1: the owner of the parameters it reads; rule 2: the module whose forward ran it.
  std::string layer_of(const Node* node) const {
    std::optional<std::string> owners;
    auto add_owner = [&](const Value* value) {
      if (const std::string* owner = facts_.owner(value))
        owners = owners ? common_prefix(*owners, *owner) : *owner;
    };
    for (const Value* input : node->inputs()) {
      if (input->node()->kind() == c10::prim::ListConstruct) {
        for (const Value* element : input->node()->inputs()) add_owner(element);
      } else {
        add_owner(input);
      }
    }
    if (owners) return *owners;
    if (traced_.has_scopes) {
      auto found = traced_.scopes.find(node);
      if (found != traced_.scopes.end()) return found->second;
    }
    // Fallback without scopes: the layer of the op that produced the first tensor input.
    for (const Value* input : node->inputs()) {
      auto found = value_layer_.find(input);
      if (found != value_layer_.end()) return found->second;
    }
    return std::string();
  }

  std::string where(const Node* node, const std::string& path) const {
    return std::string(node->kind().toQualString()) + " in layer '" + layer_name(path) + "' of " +
           traced_.model;
  }

  // Bytes of the new tensors an op writes (a shape the rule inferred included). A type that lost its
  // dtype too is taken as float32.
  std::int64_t output_bytes(const Node* node) const {
    std::int64_t bytes = 0;
    for (const Value* out : node->outputs()) {
      auto type = out->type()->cast<c10::TensorType>();
      if (!type) continue;
      const std::int64_t element = type->scalarType() ? c10::elementSize(*type->scalarType()) : 4;
      if (auto shape = facts_.shape(out)) bytes += numel(*shape) * element;
    }
    return bytes;
  }

  // The size of an other-op's output: its traced shape, else its tensor inputs broadcast together.
  OpCount default_count(const OpRule& rule, const OpView& op) const {
    OpCount count;
    if (rule.category != OpCategory::kOther) return count;
    if (auto shape = op.output_shape(0)) {
      count.other_elements = numel(*shape);
      return count;
    }
    std::optional<Shape> inferred;
    for (std::size_t i = 0; i < op.num_inputs(); ++i) {
      if (auto shape = op.input_shape(i)) inferred = inferred ? broadcast(*inferred, *shape) : *shape;
    }
    count.other_elements = inferred ? numel(*inferred) : 0;
    count.inferred_output = inferred;
    return count;
  }

  Status count_node(const Node* node) {
    if (is_prim(node)) return Status::ok();
    const std::string op = node->kind().toQualString();
    const OpRule* rule = rules_.find(op);
    if (rule == nullptr) {
      if (!has_tensor_output(node)) return Status::ok();  // aten::size, aten::Int: shape arithmetic
      rule = &unrecognized_rule();
      ++profile_.unrecognized_ops[op];
    }
    const std::string path = layer_of(node);
    for (const Value* out : node->outputs()) value_layer_[out] = path;

    OpView view(*node, facts_);
    Result<OpCount> counted = rule->count ? rule->count(view) : Result<OpCount>(default_count(*rule, view));
    if (!counted.is_ok()) {
      const Status& status = counted.status();
      return Status(status.code(),
                    "static profile: cannot count " + where(node, path) + ": " + status.message());
    }
    const OpCount& count = *counted;
    const std::string kind = count.kind.empty() ? rule->kind : count.kind;
    if (count.inferred_output && !node->outputs().empty()) {
      facts_.infer(node->output(0), *count.inferred_output);
      ++profile_.inferred_shapes;
    }
    const std::int64_t bytes = rule->is_view ? 0 : output_bytes(node);

    LayerAccumulator& own = layer(path);
    if (own.first_op_kind.empty()) own.first_op_kind = kind;
    own.profile.ops += 1;
    own.profile.activation_bytes += bytes;
    own.profile.kinds[kind].ops += 1;
    own.profile.kinds[kind].activation_bytes += bytes;
    profile_.ops += 1;
    profile_.activation_bytes += bytes;
    profile_.kinds[kind].ops += 1;
    profile_.kinds[kind].activation_bytes += bytes;
    for (const MacShare& share : count.macs) {
      std::string target = path;
      if (share.owner_input >= 0 && static_cast<std::size_t>(share.owner_input) < node->inputs().size()) {
        if (const std::string* owner = facts_.owner(node->input(share.owner_input))) target = *owner;
      }
      LayerAccumulator& receiver = layer(target);
      receiver.profile.macs += share.macs;
      receiver.profile.kinds[share.kind].macs += share.macs;
      profile_.macs += share.macs;
      profile_.kinds[share.kind].macs += share.macs;
      own.op_kind_macs[kind] += share.macs;
    }
    if (rule->category == OpCategory::kOther) {
      own.profile.other_ops += 1;
      own.profile.other_elements += count.other_elements;
      own.profile.kinds[kind].elements += count.other_elements;
      own.op_kind_elements[kind] += count.other_elements;
      profile_.other_ops += 1;
      profile_.other_elements += count.other_elements;
      profile_.kinds[kind].elements += count.other_elements;
    }
    return Status::ok();
  }

  static std::string argmax(const std::map<std::string, std::int64_t>& weights) {
    std::string best;
    std::int64_t best_weight = 0;
    for (const auto& [kind, weight] : weights) {
      if (weight > best_weight) {
        best = kind;
        best_weight = weight;
      }
    }
    return best;
  }

  static std::string layer_kind(const LayerAccumulator& layer) {
    std::string kind = argmax(layer.op_kind_macs);
    if (kind.empty()) {
      std::map<std::string, std::int64_t> share_macs;
      for (const auto& [name, stats] : layer.profile.kinds) share_macs[name] = stats.macs;
      kind = argmax(share_macs);
    }
    if (kind.empty()) kind = argmax(layer.op_kind_elements);
    if (kind.empty()) kind = layer.first_op_kind;
    return kind.empty() ? "unused" : kind;
  }

  StaticProfile finish() {
    // Modules with parameters whose ops never ran (an unused branch) still own their parameters.
    for (const auto& [path, sums] : pending_params_) {
      LayerAccumulator& target = layer(path);
      target.profile.params += sums.first;
      target.profile.param_bytes += sums.second;
    }
    for (const auto& [path, bytes] : pending_buffers_) layer(path).profile.buffer_bytes += bytes;
    profile_.model = traced_.model;
    profile_.input_shapes = traced_.input_shapes;
    profile_.attribution = traced_.has_scopes ? "module scopes" : "producer (no module scopes recorded)";
    for (LayerAccumulator& accumulator : layers_) {
      accumulator.profile.kind = layer_kind(accumulator);
      profile_.layers.push_back(std::move(accumulator.profile));
    }
    return std::move(profile_);
  }

  const TracedModel& traced_;
  const OpRules& rules_;
  GraphFacts facts_;
  StaticProfile profile_;
  std::deque<LayerAccumulator> layers_;  // a deque: references stay valid while layers are added
  std::unordered_map<std::string, std::size_t> index_;
  std::unordered_map<const Value*, std::string> value_layer_;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> pending_params_;
  std::map<std::string, std::int64_t> pending_buffers_;
};

Json kind_json(const KindStats& stats) {
  return Json{{"ops", stats.ops},
              {"macs", stats.macs},
              {"elements", stats.elements},
              {"activation_bytes", stats.activation_bytes}};
}

// The counts a layer and the whole model both have, in the order both write them.
template <class Counts>
void put_counts(Json& out, const Counts& counts) {
  out["params"] = counts.params;
  out["param_bytes"] = counts.param_bytes;
  out["buffer_bytes"] = counts.buffer_bytes;
  out["macs"] = counts.macs;
  out["ops"] = counts.ops;
  out["other_ops"] = counts.other_ops;
  out["other_elements"] = counts.other_elements;
  out["activation_bytes"] = counts.activation_bytes;
}

Json kinds_json(const std::map<std::string, KindStats>& kinds) {
  Json out = Json::object();
  for (const auto& [kind, stats] : kinds) out[kind] = kind_json(stats);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Profiles

Json LayerProfile::to_json() const {
  Json out{{"name", name}, {"kind", kind}};
  put_counts(out, *this);
  out["kinds"] = kinds_json(kinds);
  return out;
}

const LayerProfile* StaticProfile::find(const std::string& name) const {
  for (const LayerProfile& layer : layers) {
    if (layer.name == name) return &layer;
  }
  return nullptr;
}

Json StaticProfile::to_json() const {
  Json out = Json::object();
  out["model"] = model;
  out["input_shapes"] = input_shapes;
  Json total = Json::object();
  put_counts(total, *this);
  out["total"] = std::move(total);
  out["kinds"] = kinds_json(kinds);
  Json list = Json::array();
  for (const LayerProfile& layer : layers) list.push_back(layer.to_json());
  out["layers"] = std::move(list);
  out["param_counting"] = param_counting;
  out["unrecognized_ops"] = unrecognized_ops;
  out["inferred_shapes"] = inferred_shapes;
  out["attribution"] = attribution;
  out["seconds"] = seconds;
  return out;
}

Result<StaticProfile> profile_traced(const TracedModel& traced, const StaticProfileOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (!traced.graph || traced.graph->inputs().empty()) {
    return Status(ErrorCode::kInvalidArgument, "static profile of " + traced.model + ": no traced graph");
  }
  Profiler profiler(traced, options.rules == nullptr ? OpRules::registered() : *options.rules);
  Result<StaticProfile> profile = profiler.run();
  if (profile.is_ok()) profile->seconds = traced.seconds + seconds_since(start);
  return profile;
}

Result<StaticProfile> static_profile(const torch::jit::Module& module,
                                     const std::vector<torch::jit::IValue>& inputs,
                                     const StaticProfileOptions& options) {
  PROFAGENT_ASSIGN_OR_RETURN(TracedModel traced, trace_for_profile(module, inputs, options.model_name));
  return profile_traced(traced, options);
}

}  // namespace profagent::torch_tk

// Pruning rules of transformers (prune_attention.hpp): the fused multi-head attention of
// nn.MultiheadAttention, the head split of decomposed attention, gathers from a relative position
// bias table, the layout ops of windowed attention (roll, pad, new tensors, copy_), and the tuple a
// scripted nn.MultiheadAttention returns through prim::If (docs/pruning.md, "Transformers").
//
// The family is named "transformer" so that it registers after "shape": its view/reshape rule wraps
// the shape family's (kept and called for every reshape that is not an attention head split).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "profagent/prune/prune_attention.hpp"
#include "prune_internal.hpp"
#include "prune_ir.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Node;
using torch::jit::Value;

// The shape family's view / reshape rules, saved when this family is added (it registers later).
std::map<std::string, PruneRule>& shape_rules() {
  static std::map<std::string, PruneRule> rules;
  return rules;
}

// ---- Fused attention ----
// aten::_native_multi_head_attention(query, key, value, embed_dim, num_heads, qkv_weight [3E, E],
//   qkv_bias [3E], proj_weight [E, E], proj_bias [E], mask, need_weights, average_attn_weights,
//   mask_type) -> (out [B, T, E], weights)
// The kernel requires qkv_weight [3E, E] with E the query's width, so the internal width E = H·D is
// the residual width: a unit couples internal rows with residual channels (prune_attention.hpp).
constexpr std::size_t kQkvWeight = 5, kQkvBias = 6, kProjWeight = 7, kProjBias = 8;

void fused_attention_rule(RuleContext& c, AttentionPruning mode) {
  const Value* query = c.input(0);
  const Value* out = c.output(0);
  auto q_shape = c.shape(query);
  auto w_shape = c.shape(c.input(kQkvWeight));
  auto heads = c.int_value(4);  // a constant (traced) or self.num_heads (scripted)
  if (!q_shape || q_shape->size() != 3 || !w_shape || w_shape->size() != 2 || c.is_none(kQkvBias) ||
      c.is_none(kProjBias)) {
    c.warn("cannot map " + c.where() + " (unexpected shapes or no biases): its tensors are frozen");
    c.freeze_all("unmapped fused attention " + c.where());
    return;
  }
  const std::int64_t E = (*q_shape)[2];
  std::int64_t H = heads.value_or(0);
  if (H <= 0 || E % H != 0 || (*w_shape)[0] != 3 * E || (*w_shape)[1] != E) {
    c.warn("cannot map " + c.where() + " (num_heads is not a constant, or weights are not [3E, E]): its tensors are frozen");
    c.freeze_all("unmapped fused attention " + c.where());
    return;
  }
  const std::int64_t D = E / H;
  const SlotRef residual{query, 2};
  for (std::size_t i = 1; i <= 2; ++i) {
    if (c.input(i) != query) c.identity_all_dims(query, c.input(i));
  }
  c.identity({query, 0}, {out, 0});
  c.identity({query, 1}, {out, 1});
  const Value* w = c.input(kQkvWeight);
  const Value* b = c.input(kQkvBias);
  const Value* pw = c.input(kProjWeight);
  const Value* pb = c.input(kProjBias);
  c.identity({w, 1}, residual);
  c.identity({b, 0}, {w, 0});
  c.identity({pw, 0}, {out, 2});
  c.identity({pb, 0}, {out, 2});
  c.role({w, 0}, prune_role::kProducer, "attention");
  c.role({w, 1}, prune_role::kConsumer, "attention");
  c.role({b, 0}, prune_role::kBias, "attention");
  c.role({pw, 0}, prune_role::kProducer, "linear");
  c.role({pw, 1}, prune_role::kConsumer, "linear");
  c.role({pb, 0}, prune_role::kBias, "linear");
  // Internal index h·D + r of q, k and v, the proj column h·D + r and residual channel h·D + r are one
  // atom; a unit is then a whole head (all r) or index r of every head (all h).
  for (std::int64_t e = 0; e < E; ++e) {
    for (std::int64_t t = 0; t < 3; ++t) c.unite(residual, e, {w, 0}, t * E + e);
    c.unite(residual, e, {pw, 1}, e);
  }
  for (std::int64_t h = 0; h < H; ++h) {
    for (std::int64_t r = 1; r < D; ++r) {
      if (mode == AttentionPruning::kHeads) {
        c.unite(residual, h * D, residual, h * D + r);
      } else if (h > 0) {
        c.unite(residual, r, residual, h * D + r);
      }
    }
    if (mode == AttentionPruning::kHeadDim && h > 0) c.unite(residual, 0, residual, h * D);
  }
  auto weights = c.num_outputs() > 1 ? c.output_shape(1) : std::nullopt;
  if (weights && weights->size() == 4 && (*weights)[1] == H) {
    if (mode == AttentionPruning::kHeads) {
      for (std::int64_t h = 0; h < H; ++h) c.unite({c.output(1), 1}, h, residual, h * D);
    } else {
      c.freeze({c.output(1), 1}, "per-head attention weights at " + c.where());
    }
  }
  c.int_edit(3, -1, residual);
  if (mode == AttentionPruning::kHeads) c.int_edit(4, -1, residual, 1, D);
}

// ---- Decomposed attention: the head split ----

// Whether `value` reaches a matmul / bmm through ops that only move or scale its dims: the reshape
// that produced it splits heads of an attention, not channels of a convolution (channel shuffle).
bool feeds_matmul(const Value* value, int depth = 0) {
  static const std::set<std::string> kLayout = {
      "aten::permute", "aten::transpose", "aten::select", "aten::unbind", "aten::contiguous", "aten::chunk",
      "aten::__getitem__", "prim::ListUnpack", "aten::mul", "aten::div", "aten::unsafe_chunk", "aten::split"};
  static const std::set<std::string> kMatmul = {"aten::matmul", "aten::bmm", "aten::baddbmm"};
  if (depth > 6) return false;
  for (const torch::jit::Use& use : value->uses()) {
    const std::string kind = use.user->kind().toQualString();
    if (kMatmul.count(kind)) return true;
    if (!kLayout.count(kind)) continue;
    for (const Value* next : use.user->outputs()) {
      if (feeds_matmul(next, depth + 1)) return true;
    }
  }
  return false;
}

// The module attributes ("path.name") an int is computed from, directly or by arithmetic. Tensors end
// the search: a size read from a tensor is not an attribute.
void attributes_read(const Value* value, const Value* self, std::set<std::string>& out, int depth = 0) {
  const Node* node = value->node();
  if (value->type()->kind() == c10::TypeKind::TensorType) return;
  if (node->kind() == c10::prim::GetAttr) {
    auto path = module_path_of(node->input(0), self);
    out.insert((path ? *path : std::string("?")) + "." + node->s(torch::jit::attr::name));
    return;
  }
  if (depth > 8 || node->kind() == c10::prim::Constant || !node->blocks().empty()) return;
  for (const Value* input : node->inputs()) attributes_read(input, self, out, depth + 1);
}

// Freezes every (tensor, dim) whose aten::size an int is computed from. Traced Swin computes
// head_dim as C // num_heads from the attention's input width C: pruning C would change head_dim, and
// the int cannot be pinned to its value with an int edit (only slots that change are rewritten).
void freeze_size_sources(RuleContext& c, const Value* value, const std::string& reason, int depth = 0) {
  static const std::set<std::string> kArithmetic = {
      "aten::Int", "prim::NumToTensor", "aten::floor_divide", "aten::floordiv", "aten::div", "aten::mul",
      "aten::add", "aten::sub", "aten::ScalarImplicit", "aten::remainder"};
  const Node* node = value->node();
  const std::string kind = node->kind().toQualString();
  if (depth > 8) return;
  if (kind == "aten::size" && node->inputs().size() == 2) {
    auto dim = torch::jit::toIValue(node->input(1));
    auto shape = c.shape(node->input(0));
    if (dim && dim->isInt() && shape && !shape->empty()) {
      const auto rank = static_cast<std::int64_t>(shape->size());
      c.freeze({node->input(0), ((dim->toInt() % rank) + rank) % rank}, reason);
    }
    return;
  }
  if (!kArithmetic.count(kind)) return;
  for (const Value* input : node->inputs()) freeze_size_sources(c, input, reason, depth + 1);
}

// Scripted Swin computes head_dim as `C // self.num_heads`, for the split and again for the scale:
// rewriting num_heads would move both, so every int computed as head_dim is (same op, same values)
// keeps D in the instance's own code. False where that cannot be done (then the heads stay).
bool pin_head_dim(RuleContext& c, const Value* head_dim, std::int64_t D, SlotRef heads) {
  const Node* expression = head_dim->node();
  if (expression->kind() == c10::prim::GetAttr || expression->kind() == c10::prim::Constant ||
      expression->kind() == c10::prim::Param) {
    return false;
  }
  bool pinned = false;
  for (const Node* node : torch::jit::findAllNodes(*c.node()->owningGraph(), expression->kind(), /*recurse=*/true)) {
    if (node->outputs().size() != 1 || !node->inputs().equals(expression->inputs())) continue;
    if (!c.pin_int(node->output(), D, heads)) return false;
    pinned = true;
  }
  return pinned;
}

// view / reshape of x [..., F] into [..., (3,) H, D] (the leading dims unchanged) that feeds a matmul:
// in kHeads mode head h is feature block {f : (f / D) mod H = h} of every third, the D and "3" dims
// stay whole, and the heads element of the size list follows. Anything else: the shape family's rule
// (which maps the innermost dim, D: the kHeadDim unit).
void head_split_rule(RuleContext& c, AttentionPruning mode, const PruneRule& fallback) {
  auto in = c.shape(c.input(0));
  auto out = c.shape(c.output(0));
  const bool candidate = mode == AttentionPruning::kHeads && in && out && !in->empty() &&
                         out->size() >= in->size() + 1 && c.reaches_parameter({c.input(0), static_cast<std::int64_t>(in->size()) - 1});
  if (!candidate) {
    fallback(c);
    return;
  }
  const auto lead = static_cast<std::int64_t>(in->size()) - 1;
  std::int64_t split = 1;
  for (std::size_t d = static_cast<std::size_t>(lead); d < out->size(); ++d) split *= (*out)[d];
  bool same_lead = split == (*in)[static_cast<std::size_t>(lead)];
  for (std::int64_t d = 0; d < lead && same_lead; ++d) same_lead = (*in)[d] == (*out)[d];
  const auto rank = static_cast<std::int64_t>(out->size());
  if (!same_lead || (*out)[rank - 2] <= 1 || !feeds_matmul(c.output(0))) {
    fallback(c);
    return;
  }
  const std::int64_t H = (*out)[rank - 2];
  const std::int64_t D = (*out)[rank - 1];
  for (std::int64_t d = 0; d < lead; ++d) c.identity({c.input(0), d}, {c.output(0), d});
  for (std::int64_t f = 0; f < (*in)[static_cast<std::size_t>(lead)]; ++f) {
    c.unite({c.input(0), lead}, f, {c.output(0), rank - 2}, (f / D) % H);
  }
  const std::string reason = "head_dim of " + c.where() + " (attention pruned by whole heads)";
  for (std::int64_t d = lead; d < rank; ++d) {
    if (d != rank - 2) c.freeze({c.output(0), d}, reason);
  }
  const Value* sizes = c.input(1);
  const Value* head_dim = sizes->node()->kind() == c10::prim::ListConstruct && sizes->node()->inputs().size() == out->size()
                              ? sizes->node()->input(static_cast<std::size_t>(rank - 1))
                              : nullptr;
  if (head_dim != nullptr) {
    // Scripted Swin: head_dim = C // self.num_heads. Rewriting num_heads (an attribute, also read by
    // that expression and by the scale) would change head_dim with it, so the heads stay. A head_dim
    // read from an attribute of its own (`self.head_dim`) does not move with the heads.
    const Value* self = c.node()->owningGraph()->inputs().at(0);
    std::set<std::string> from_heads, from_head_dim;
    attributes_read(head_dim, self, from_head_dim);
    attributes_read(sizes->node()->input(static_cast<std::size_t>(rank - 2)), self, from_heads);
    bool shared = false;
    for (const std::string& attribute : from_head_dim) shared = shared || from_heads.count(attribute) > 0;
    if (!from_head_dim.empty() && (shared || from_heads.empty())) {
      if (!pin_head_dim(c, head_dim, D, {c.output(0), rank - 2})) {
        c.freeze({c.output(0), rank - 2}, "num_heads of " + c.where() + " also gives head_dim (C // num_heads)");
        return;
      }
      c.int_edit(1, rank - 2, {c.output(0), rank - 2});
      return;
    }
  }
  if (head_dim != nullptr) freeze_size_sources(c, head_dim, "head_dim of " + c.where() + " is computed from this width");
  c.int_edit(1, rank - 2, {c.output(0), rank - 2});
}

// ---- Gathers and windowed-attention layout ----

// aten::index(self, Tensor?[] indices) with one tensor index at dim k (relative_position_bias_table
// [relative_position_index]): the gathered dim is replaced by the index's dims; the other dims map.
void index_rule(RuleContext& c) {
  const Value* self = c.input(0);
  auto elements = c.list_elements(1);
  auto in = c.shape(self);
  auto out = c.shape(c.output(0));
  std::int64_t k = -1;
  const Value* index = nullptr;
  if (elements) {
    for (std::size_t i = 0; i < elements->size(); ++i) {
      const Value* e = (*elements)[i];
      if (e->type()->kind() == c10::TypeKind::NoneType) continue;
      if (index != nullptr) k = -2;  // several tensor indices: advanced indexing we do not map
      if (k != -2) {
        k = static_cast<std::int64_t>(i);
        index = e;
      }
    }
  }
  auto index_shape = index != nullptr ? c.shape(index) : std::nullopt;
  auto index_type = index != nullptr ? index->type()->cast<c10::TensorType>() : nullptr;
  const bool boolean = index_type && index_type->scalarType() &&
                       (*index_type->scalarType() == c10::kBool || *index_type->scalarType() == c10::kByte);
  if (k < 0 || !in || !out || !index_shape || boolean) {
    c.freeze_all("advanced indexing that is not mapped at " + c.where());
    return;
  }
  const auto index_rank = static_cast<std::int64_t>(index_shape->size());
  if (static_cast<std::int64_t>(out->size()) != static_cast<std::int64_t>(in->size()) - 1 + index_rank) {
    c.freeze_all("advanced indexing with an unexpected shape at " + c.where());
    return;
  }
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(in->size()); ++d) {
    if (d == k) continue;
    c.identity({self, d}, {c.output(0), d < k ? d : d - 1 + index_rank});
    c.role({self, d}, prune_role::kOther, "embedding");
  }
  c.freeze({self, k}, "gathered dim at " + c.where());
}

// aten::roll(x, shifts, dims): rolled dims are spatial (their indices move); the others map.
void roll_rule(RuleContext& c) {
  auto in = c.shape(c.input(0));
  auto dims = c.int_list_input(2);
  if (!in || !dims) {
    c.freeze_all("roll with unknown dims at " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(in->size());
  std::set<std::int64_t> rolled;
  for (std::int64_t d : *dims) rolled.insert(((d % rank) + rank) % rank);
  if (dims->empty()) {
    c.freeze_all("roll of the flattened tensor at " + c.where());
    return;
  }
  for (std::int64_t d = 0; d < rank; ++d) {
    if (rolled.count(d)) {
      c.freeze({c.input(0), d}, "rolled dim at " + c.where());
      c.freeze({c.output(0), d}, "rolled dim at " + c.where());
    } else {
      c.identity({c.input(0), d}, {c.output(0), d});
    }
  }
}

// aten::pad(x, pad, mode, value) / constant_pad_nd(x, pad, value): pad holds (before, after) pairs
// from the last dim backwards; a dim padded by constant zeros maps, any other is frozen.
void pad_rule(RuleContext& c) {
  auto in = c.shape(c.input(0));
  const Value* list = c.input(1);
  // Each element of the pad list, when it is a constant (Swin computes the spatial pads from sizes).
  std::vector<std::optional<std::int64_t>> pads;
  if (auto ints = c.int_list_input(1)) {
    for (std::int64_t p : *ints) pads.emplace_back(p);
  } else if (list->node()->kind() == c10::prim::ListConstruct) {
    for (const Value* element : list->node()->inputs()) {
      auto constant = torch::jit::toIValue(element);
      pads.push_back(constant && constant->isInt() ? std::optional<std::int64_t>(constant->toInt()) : std::nullopt);
    }
  } else {
    c.freeze_all("pad with unknown sizes at " + c.where());
    return;
  }
  if (!in) {
    c.freeze_all("unknown shape at " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(in->size());
  for (std::int64_t d = 0; d < rank; ++d) {
    const auto before = static_cast<std::size_t>(2 * (rank - 1 - d));
    const bool padded = before < pads.size() &&
                        (pads[before] != std::optional<std::int64_t>(0) ||
                         (before + 1 < pads.size() && pads[before + 1] != std::optional<std::int64_t>(0)));
    if (!padded) {
      c.identity({c.input(0), d}, {c.output(0), d});
    } else {
      c.freeze({c.input(0), d}, "padded dim at " + c.where());
      c.freeze({c.output(0), d}, "padded dim at " + c.where());
    }
  }
}

// new_zeros / new_ones / new_full / new_empty, tensor / zeros / arange ...: a new tensor of the given
// size or data; only the dtype and device of an input are read. Its dims come from ints that no rule
// follows: frozen.
void new_tensor_rule(RuleContext& c) {
  if (c.num_outputs() > 0 && c.is_tensor(c.output(0))) c.freeze_value(c.output(0), "new tensor at " + c.where());
}

// aten::copy_(self, src, non_blocking): the output is self; src broadcasts into it.
void copy_rule(RuleContext& c) {
  c.identity_all_dims(c.input(0), c.output(0));
  if (c.is_tensor(c.input(1))) c.broadcast_to(c.input(1), c.output(0));
}

// The TupleConstructs that produced `tuple` in the branches that ran, when `tuple` is an output of a
// prim::If (scripted nn.MultiheadAttention returns (out, weights) from its fast or slow path): a branch
// ran when its tensors have shapes. False when the tuple comes from anything else.
bool constructs_that_ran(const RuleContext& c, const Value* tuple, std::vector<const Node*>& out,
                         std::vector<const Node*>& fallback, int depth = 0) {
  const Node* node = tuple->node();
  if (node->kind() == c10::prim::Uninitialized) return true;  // the other way of an early return
  if (node->kind() == c10::prim::TupleConstruct) {
    // The branch ran when a tensor it computes has a shape; a tuple of values from outside the branch
    // has shapes whether it ran or not, and is only taken when nothing better is found.
    for (const Value* element : node->inputs()) {
      if (c.is_tensor(element) && c.shape(element) && element->node()->owningBlock() == node->owningBlock()) {
        out.push_back(node);
        return true;
      }
    }
    for (const Value* element : node->inputs()) {
      if (c.is_tensor(element) && c.shape(element)) {
        fallback.push_back(node);
        break;
      }
    }
    return true;
  }
  if (node->kind() != c10::prim::If || depth > 8) return false;
  for (const torch::jit::Block* block : node->blocks()) {
    if (!constructs_that_ran(c, block->outputs()[tuple->offset()], out, fallback, depth + 1)) return false;
  }
  return true;
}

// prim::TupleUnpack of a tuple returned by an If (the engine maps TupleUnpack of a TupleConstruct):
// element i of every branch that ran is output i.
void tuple_unpack_rule(RuleContext& c) {
  std::vector<const Node*> constructs;
  std::vector<const Node*> fallback;
  const bool followed = constructs_that_ran(c, c.input(0), constructs, fallback);
  if (constructs.empty()) constructs = fallback;
  if (!followed || constructs.empty()) {
    c.warn("cannot follow the tuple of " + c.where() + ": its tensors are frozen");
    c.freeze_all("unfollowed tuple at " + c.where());
    return;
  }
  for (const Node* construct : constructs) {
    for (std::size_t i = 0; i < c.num_outputs() && i < construct->inputs().size(); ++i) {
      const Value* element = construct->input(i);
      if (c.is_tensor(c.output(i)) && c.shape(c.output(i)) && c.shape(element)) {
        c.identity_all_dims(element, c.output(i));
      }
    }
  }
}

void set_mode_rules(PruneRules& rules, AttentionPruning mode) {
  rules.set("aten::_native_multi_head_attention", [mode](RuleContext& c) { fused_attention_rule(c, mode); });
  for (const auto& [op, fallback] : shape_rules()) {
    rules.set(op, [mode, fallback = fallback](RuleContext& c) { head_split_rule(c, mode, fallback); });
  }
}

void add_transformer_rules(PruneRules& rules) {
  for (const char* op : {"aten::view", "aten::reshape"}) {
    if (const PruneRule* rule = rules.find(op)) shape_rules()[op] = *rule;
  }
  set_mode_rules(rules, AttentionPruning::kHeads);
  rules.set("aten::index", index_rule);
  rules.set("aten::roll", roll_rule);
  rules.set("aten::pad", pad_rule);
  rules.set("aten::constant_pad_nd", pad_rule);
  for (const char* op : {"aten::new_zeros", "aten::new_ones", "aten::new_full", "aten::new_empty", "aten::tensor",
                         "aten::zeros", "aten::ones", "aten::empty", "aten::full", "aten::arange", "aten::scalar_tensor"}) {
    rules.set(op, new_tensor_rule);
  }
  rules.set("aten::copy_", copy_rule);
  rules.set("prim::TupleUnpack", tuple_unpack_rule);
  // Metadata checks of nn.MultiheadAttention's fast path: nothing to map.
  for (const char* op : {"prim::is_nested", "prim::is_sparse", "prim::is_mkldnn", "prim::is_meta", "prim::is_xpu"}) {
    rules.set(op, [](RuleContext&) {});
  }
  // Its slow path (F.multi_head_attention_forward, taken with gradients) reads only shapes and the
  // embed_dim / num_heads attributes, which the int edits of the fused call set; its reshapes merge
  // batch and heads, which no index mapping describes.
  rules.analyse_module_by("MultiheadAttention", "aten::_native_multi_head_attention");
}

}  // namespace

PROFAGENT_PRUNE_RULES(transformer, add_transformer_rules)

PruneRules attention_rules(AttentionPruning mode, const PruneRules& base) {
  PruneRules::builtin();  // registers the families (and saves the shape family's rules)
  PruneRules rules = base;
  set_mode_rules(rules, mode);
  return rules;
}

ModuleRules transformer_module_rules(AttentionPruning mode, const ModuleRules& base) {
  ModuleRules rules = base;
  // in_proj_weight is [3·num_heads·head_dim, embed_dim]: fused, both widths are embed_dim; written
  // out (prune_attention_written_out.hpp), the heads' width is free of the residual width.
  rules.set("MultiheadAttention", [mode](const ModuleEdit& edit) {
    auto width = new_dim(edit, "in_proj_weight", 1);
    auto rows = new_dim(edit, "in_proj_weight", 0);
    auto heads = edit.get_int("num_heads");
    auto head_dim = edit.get_int("head_dim");
    if (!width || !rows || !heads || !head_dim || *heads <= 0 || *head_dim <= 0) return;
    edit.set_int("embed_dim", *width);
    edit.set_int("kdim", *width);
    edit.set_int("vdim", *width);
    if (mode == AttentionPruning::kHeads) {
      edit.set_int("num_heads", *rows / 3 / *head_dim);
    } else {
      edit.set_int("head_dim", *rows / 3 / *heads);
    }
  });
  rules.set("ShiftedWindowAttention", [](const ModuleEdit& edit) {
    if (auto heads = new_dim(edit, "relative_position_bias_table", 1)) edit.set_int("num_heads", *heads);
  });
  rules.set("VisionTransformer", [](const ModuleEdit& edit) {
    if (auto width = new_dim(edit, "class_token", 2)) edit.set_int("hidden_dim", *width);
  });
  return rules;
}

}  // namespace profagent::torch_tk

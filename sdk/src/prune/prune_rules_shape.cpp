// Pruning rules of ops that move or regroup indices: view / reshape / flatten / unflatten / squeeze
// (index mapping), permute / transpose, cat / stack, split / chunk / unbind, slice / select / narrow,
// expand, channel_shuffle, and list element access.
//
// Reshape policy (docs/pruning.md): a run of input dims whose product equals a run of output dims is
// mapped through ONE dim, so that a unit stays one index of one dim. Merging dims (C×H×W → C·H·W)
// maps the dim whose indices already reach a parameter (the channels; the innermost if several):
// channel c owns its H·W consecutive features. Splitting a dim (C → g × C/g, 3·H·D → 3 × H × D)
// maps the innermost output dim (C/g, D): index r of every group or head is one unit. The other dims
// of the run are frozen, so that the reshape stays valid whatever is removed.
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "../profile/op_rule_table.hpp"
#include "profagent/prune/prune_graph.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Value;

std::int64_t normalize_dim(std::int64_t dim, std::int64_t rank) {
  if (rank <= 0) return 0;
  return ((dim % rank) + rank) % rank;
}

std::int64_t product(const PruneShape& shape, std::size_t begin, std::size_t end) {
  std::int64_t p = 1;
  for (std::size_t i = begin; i < end; ++i) p *= shape[i];
  return p;
}

// Which (input, element) of the node gives the size of output dim d; nullopt when none (flatten).
using SizeElement = std::function<std::optional<std::pair<std::size_t, std::int64_t>>(std::int64_t)>;

void size_edit(RuleContext& c, const SizeElement& element, const Value* out, std::int64_t dim) {
  if (!element) return;
  if (auto where = element(dim)) c.int_edit(where->first, where->second, {out, dim});
}

// Maps `in` (shape I) to `out` (shape O) that holds the same elements in the same order.
void reshape_mapping(RuleContext& c, const Value* in, const Value* out, const SizeElement& element) {
  auto si = c.shape(in);
  auto so = c.shape(out);
  if (!si || !so) {
    c.freeze_all("unknown shape at " + c.where());
    return;
  }
  const PruneShape& I = *si;
  const PruneShape& O = *so;
  if (product(I, 0, I.size()) != product(O, 0, O.size()) || product(I, 0, I.size()) == 0) {
    c.freeze_all("reshape of a different or empty size at " + c.where());
    return;
  }
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < I.size() && j < O.size()) {
    const std::size_t i0 = i;
    const std::size_t j0 = j;
    std::int64_t pi = I[i++];
    std::int64_t pj = O[j++];
    while (pi != pj) {
      if (pi < pj) {
        if (i >= I.size()) break;
        pi *= I[i++];
      } else {
        if (j >= O.size()) break;
        pj *= O[j++];
      }
    }
    if (pi != pj) {
      c.freeze_all("reshape without matching runs at " + c.where());
      return;
    }
    std::vector<std::int64_t> a;
    std::vector<std::int64_t> b;
    for (std::size_t k = i0; k < i; ++k) {
      if (I[k] > 1) a.push_back(static_cast<std::int64_t>(k));
    }
    for (std::size_t k = j0; k < j; ++k) {
      if (O[k] > 1) b.push_back(static_cast<std::int64_t>(k));
    }
    if (a.empty() || b.empty()) continue;  // dims of width 1
    if (a.size() == 1 && b.size() == 1) {
      c.identity({in, a[0]}, {out, b[0]});
      size_edit(c, element, out, b[0]);
      continue;
    }
    const std::string reason = "dim regrouped by " + c.where();
    if (b.size() == 1) {
      // Merge: map the innermost input dim that reaches a parameter (else the innermost).
      std::int64_t m = a.back();
      for (auto it = a.rbegin(); it != a.rend(); ++it) {
        if (c.reaches_parameter({in, *it})) {
          m = *it;
          break;
        }
      }
      const std::int64_t stride = product(I, static_cast<std::size_t>(m) + 1, i);
      const std::int64_t width = I[static_cast<std::size_t>(m)];
      for (std::int64_t f = 0; f < O[static_cast<std::size_t>(b[0])]; ++f) {
        c.unite({out, b[0]}, f, {in, m}, (f / stride) % width);
      }
      for (std::int64_t d : a) {
        if (d != m) c.freeze({in, d}, reason);
      }
      size_edit(c, element, out, b[0]);
      continue;
    }
    if (a.size() == 1) {
      // Split: map the innermost output dim.
      const std::int64_t m = b.back();
      const std::int64_t stride = product(O, static_cast<std::size_t>(m) + 1, j);
      const std::int64_t width = O[static_cast<std::size_t>(m)];
      for (std::int64_t f = 0; f < I[static_cast<std::size_t>(a[0])]; ++f) {
        c.unite({in, a[0]}, f, {out, m}, (f / stride) % width);
      }
      for (std::int64_t d : b) {
        if (d != m) c.freeze({out, d}, reason);
      }
      size_edit(c, element, out, m);
      continue;
    }
    for (std::int64_t d : a) c.freeze({in, d}, reason);
    for (std::int64_t d : b) c.freeze({out, d}, reason);
  }
}

// aten::view(x, size) / aten::reshape(x, shape): output dim d is element d of input 1.
void view_rule(RuleContext& c) {
  reshape_mapping(c, c.input(0), c.output(0), [](std::int64_t d) {
    return std::optional<std::pair<std::size_t, std::int64_t>>({1, d});
  });
}

// flatten, squeeze, unsqueeze, view_as, reshape_as: no size list to rewrite.
void flatten_rule(RuleContext& c) { reshape_mapping(c, c.input(0), c.output(0), nullptr); }

// aten::unflatten(x, dim, sizes): output dims dim .. dim+len(sizes)-1 are elements of input 2.
void unflatten_rule(RuleContext& c) {
  auto in = c.shape(c.input(0));
  auto dim = c.int_input(1);
  if (!in || !dim) {
    c.freeze_all("unflatten with unknown dim at " + c.where());
    return;
  }
  const std::int64_t first = normalize_dim(*dim, static_cast<std::int64_t>(in->size()));
  reshape_mapping(c, c.input(0), c.output(0), [first](std::int64_t d) {
    if (d < first) return std::optional<std::pair<std::size_t, std::int64_t>>();
    return std::optional<std::pair<std::size_t, std::int64_t>>({2, d - first});
  });
}

void permute_rule(RuleContext& c) {
  auto dims = c.int_list_input(1);
  auto out = c.shape(c.output(0));
  if (!dims || !out || dims->size() != out->size()) {
    c.freeze_all("permute with unknown dims at " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(dims->size());
  for (std::int64_t d = 0; d < rank; ++d) {
    c.identity({c.input(0), normalize_dim((*dims)[static_cast<std::size_t>(d)], rank)}, {c.output(0), d});
  }
}

void transpose_rule(RuleContext& c) {
  auto in = c.shape(c.input(0));
  const std::string op = c.op();
  if (!in) {
    c.freeze_all("unknown shape at " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(in->size());
  std::int64_t a = 0;
  std::int64_t b = rank > 1 ? 1 : 0;
  if (op == "aten::transpose" || op == "aten::swapaxes" || op == "aten::swapdims") {
    auto d0 = c.int_input(1);
    auto d1 = c.int_input(2);
    if (!d0 || !d1) {
      c.freeze_all("transpose with unknown dims at " + c.where());
      return;
    }
    a = normalize_dim(*d0, rank);
    b = normalize_dim(*d1, rank);
  } else if (rank > 2) {  // numpy_T, mT reverse / swap the last two; only 2-D handled here
    a = rank - 2;
    b = rank - 1;
  }
  for (std::int64_t d = 0; d < rank; ++d) {
    const std::int64_t from = d == a ? b : (d == b ? a : d);
    c.identity({c.input(0), from}, {c.output(0), d});
  }
}

// aten::cat(tensors, dim): input k occupies [offset_k, offset_k + width_k) of the output's dim.
void cat_rule(RuleContext& c) {
  auto elements = c.list_elements(0);
  auto out = c.shape(c.output(0));
  auto dim = c.int_input(1);
  if (!elements || !out || !dim) {
    c.warn("cannot follow the inputs of " + c.where() + ": they are frozen");
    c.freeze_all("unfollowed cat " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(out->size());
  const std::int64_t d = normalize_dim(*dim, rank);
  std::int64_t offset = 0;
  for (const Value* element : *elements) {
    auto shape = c.shape(element);
    if (!shape) {
      c.freeze_all("an input of unknown shape at " + c.where());
      return;
    }
    if (shape->size() != out->size()) continue;  // legacy empty tensors
    for (std::int64_t k = 0; k < rank; ++k) {
      if (k != d) c.identity({element, k}, {c.output(0), k});
    }
    const std::int64_t width = (*shape)[static_cast<std::size_t>(d)];
    c.map_range({element, d}, 0, {c.output(0), d}, offset, width);
    offset += width;
  }
}

// aten::stack(tensors, dim): each input's dims map around the new dim, which cannot shrink.
void stack_rule(RuleContext& c) {
  auto elements = c.list_elements(0);
  auto out = c.shape(c.output(0));
  auto dim = c.int_input(1);
  if (!elements || !out || !dim) {
    c.freeze_all("unfollowed stack " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(out->size());
  const std::int64_t d = normalize_dim(*dim, rank);
  for (const Value* element : *elements) {
    for (std::int64_t k = 0; k + 1 < rank; ++k) c.identity({element, k}, {c.output(0), k < d ? k : k + 1});
  }
  c.freeze({c.output(0), d}, "stacked dim at " + c.where());
}

// aten::split(x, int | int[], dim), split_with_sizes, chunk(x, chunks, dim), unbind(x, dim).
void split_rule(RuleContext& c) {
  const std::string op = c.op();
  const Value* in = c.input(0);
  auto shape = c.shape(in);
  auto elements = c.list_output_elements(0);
  const bool unbind = op == "aten::unbind";
  auto dim = c.int_input(unbind ? 1 : 2);
  if (!shape || !elements || !dim) {
    c.warn("cannot follow the outputs of " + c.where() + ": they are frozen");
    c.freeze_all("unfollowed split " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(shape->size());
  const std::int64_t d = normalize_dim(*dim, rank);
  const std::int64_t total = (*shape)[static_cast<std::size_t>(d)];
  if (unbind) {
    for (const Value* element : *elements) {
      if (element == nullptr) continue;
      for (std::int64_t k = 0; k + 1 < rank; ++k) c.identity({in, k < d ? k : k + 1}, {element, k});
    }
    c.freeze({in, d}, "unbound dim at " + c.where());
    return;
  }
  // Widths of the pieces, from the arguments.
  std::vector<std::int64_t> widths;
  bool uniform = false;
  if (op == "aten::chunk") {
    auto chunks = c.int_input(1);
    if (!chunks || *chunks <= 0) {
      c.freeze_all("chunk with unknown count at " + c.where());
      return;
    }
    const std::int64_t size = (total + *chunks - 1) / *chunks;
    for (std::int64_t at = 0; at < total; at += size) widths.push_back(std::min(size, total - at));
    uniform = true;
  } else if (auto size = c.int_input(1)) {
    for (std::int64_t at = 0; at < total; at += *size) widths.push_back(std::min(*size, total - at));
    uniform = true;
  } else if (auto sizes = c.int_list_input(1)) {
    widths = *sizes;
  } else {
    c.freeze_all("split with unknown sizes at " + c.where());
    return;
  }
  if (elements->size() < widths.size()) elements->resize(widths.size(), nullptr);
  std::int64_t offset = 0;
  for (std::size_t k = 0; k < widths.size(); ++k) {
    const Value* element = (*elements)[k];
    if (element == nullptr) {
      // An unused piece: nothing tells its new width, so its indices stay.
      for (std::int64_t r = 0; r < widths[k]; ++r) c.freeze_index({in, d}, offset + r, "unused piece of " + c.where());
    } else {
      for (std::int64_t m = 0; m < rank; ++m) {
        if (m != d) c.identity({in, m}, {element, m});
      }
      c.map_range({in, d}, offset, {element, d}, 0, widths[k]);
    }
    offset += widths[k];
  }
  if (uniform) {
    const bool equal = std::all_of(widths.begin(), widths.end(), [&](std::int64_t w) { return w == widths[0]; });
    if (!equal) {
      c.freeze({in, d}, "uneven pieces of " + c.where());
      return;
    }
    // Equal pieces stay equal: index r of every piece is one unit.
    for (std::size_t k = 1; k < widths.size(); ++k) {
      for (std::int64_t r = 0; r < widths[0]; ++r) {
        c.unite({in, d}, r, {in, d}, static_cast<std::int64_t>(k) * widths[0] + r);
      }
    }
    if (op != "aten::chunk") {
      c.int_edit(1, -1, {in, d}, 1, static_cast<std::int64_t>(widths.size()));
    }
    return;
  }
  for (std::size_t k = 0; k < widths.size(); ++k) {
    if ((*elements)[k] != nullptr) c.int_edit(1, static_cast<std::int64_t>(k), {(*elements)[k], d});
  }
}

// Dims other than `d` of the input map to the output (shifted when the op drops d).
void map_except(RuleContext& c, std::int64_t d, bool drops) {
  auto in = c.shape(c.input(0));
  if (!in) return;
  const auto rank = static_cast<std::int64_t>(in->size());
  for (std::int64_t k = 0; k < rank; ++k) {
    if (k == d) continue;
    c.identity({c.input(0), k}, {c.output(0), drops && k > d ? k - 1 : k});
  }
}

// aten::slice(x, dim, start, end, step): a slice of the whole dim is an identity; any other slice
// freezes the dim (its bounds are indices that pruning would move).
void slice_rule(RuleContext& c) {
  auto in = c.shape(c.input(0));
  auto out = c.shape(c.output(0));
  auto dim = c.int_input(1);
  if (!in || !out || !dim) {
    c.freeze_all("slice with unknown dim at " + c.where());
    return;
  }
  const std::int64_t d = normalize_dim(*dim, static_cast<std::int64_t>(in->size()));
  map_except(c, d, false);
  const auto start = c.is_none(2) ? std::optional<std::int64_t>(0) : c.int_input(2);
  const auto step = c.num_inputs() > 4 ? c.int_input(4) : std::optional<std::int64_t>(1);
  const bool whole = start && *start == 0 && step && *step == 1 &&
                     (*in)[static_cast<std::size_t>(d)] == (*out)[static_cast<std::size_t>(d)];
  if (whole) {
    c.identity({c.input(0), d}, {c.output(0), d});
    return;
  }
  c.freeze({c.input(0), d}, "sliced dim at " + c.where());
  c.freeze({c.output(0), d}, "sliced dim at " + c.where());
}

// aten::select(x, dim, index) / narrow(x, dim, start, length) / index_select(x, dim, index).
void select_rule(RuleContext& c) {
  auto in = c.shape(c.input(0));
  auto dim = c.int_input(1);
  if (!in || !dim) {
    c.freeze_all("select with unknown dim at " + c.where());
    return;
  }
  const std::int64_t d = normalize_dim(*dim, static_cast<std::int64_t>(in->size()));
  const bool drops = c.op() == "aten::select";
  map_except(c, d, drops);
  c.freeze({c.input(0), d}, "indexed dim at " + c.where());
  if (!drops) c.freeze({c.output(0), d}, "indexed dim at " + c.where());
}

// aten::expand(x, size, implicit): non-broadcast dims map, and their size elements follow them.
void expand_rule(RuleContext& c) {
  c.broadcast_to(c.input(0), c.output(0));
  auto in = c.shape(c.input(0));
  auto out = c.shape(c.output(0));
  if (!in || !out) return;
  const auto offset = static_cast<std::int64_t>(out->size() - in->size());
  for (std::size_t d = 0; d < in->size(); ++d) {
    const auto od = static_cast<std::int64_t>(d) + offset;
    if ((*in)[d] == (*out)[static_cast<std::size_t>(od)] && (*in)[d] > 1) c.int_edit(1, od, {c.output(0), od});
  }
}

// aten::expand_as(x, other): the output has other's shape.
void expand_as_rule(RuleContext& c) {
  c.broadcast_to(c.input(0), c.output(0));
  c.identity_all_dims(c.input(1), c.output(0));
}

// aten::channel_shuffle(x, groups): output channel r·g + k is input channel k·(C/g) + r; index r of
// every group is one unit, so groups stays valid.
void channel_shuffle_rule(RuleContext& c) {
  auto in = c.shape(c.input(0));
  auto groups = c.int_input(1);
  if (!in || in->size() < 2 || !groups || *groups <= 0 || (*in)[1] % *groups != 0) {
    c.freeze_all("channel shuffle with unknown groups at " + c.where());
    return;
  }
  const std::int64_t g = *groups;
  const std::int64_t per_group = (*in)[1] / g;
  map_except(c, 1, false);
  for (std::int64_t k = 0; k < g; ++k) {
    for (std::int64_t r = 0; r < per_group; ++r) {
      c.unite({c.input(0), 1}, k * per_group + r, {c.output(0), 1}, r * g + k);
      if (k > 0) c.unite({c.input(0), 1}, r, {c.input(0), 1}, k * per_group + r);
    }
  }
}

// aten::__getitem__(list, index) of a list built in the graph: the element itself.
void getitem_rule(RuleContext& c) {
  if (c.num_outputs() == 0 || !c.is_tensor(c.output(0))) return;
  auto elements = c.list_elements(0);
  auto index = c.int_input(1);
  if (!elements || !index) {
    c.freeze_all("list element that cannot be followed at " + c.where());
    return;
  }
  const auto count = static_cast<std::int64_t>(elements->size());
  const std::int64_t k = *index < 0 ? *index + count : *index;
  if (k < 0 || k >= count) {
    c.freeze_all("list index out of range at " + c.where());
    return;
  }
  c.identity_all_dims((*elements)[static_cast<std::size_t>(k)], c.output(0));
}

void unchecked_cast_rule(RuleContext& c) {
  if (c.is_tensor(c.input(0)) && c.is_tensor(c.output(0))) c.identity_all_dims(c.input(0), c.output(0));
}

// Ops that read a tensor's value or metadata as a number: nothing to map.
void nothing_rule(RuleContext&) {}

void add_shape_rules(PruneRules& rules) {
  set_op_rules(rules, "view reshape", view_rule);
  set_op_rules(rules, "flatten squeeze unsqueeze view_as reshape_as", flatten_rule);
  set_op_rules(rules, "unflatten", unflatten_rule);
  set_op_rules(rules, "permute", permute_rule);
  set_op_rules(rules, "transpose swapaxes swapdims t numpy_T", transpose_rule);
  set_op_rules(rules, "cat concat", cat_rule);
  set_op_rules(rules, "stack", stack_rule);
  set_op_rules(rules, "split split_with_sizes chunk unbind", split_rule);
  set_op_rules(rules, "slice", slice_rule);
  set_op_rules(rules, "select narrow index_select", select_rule);
  set_op_rules(rules, "expand", expand_rule);
  set_op_rules(rules, "expand_as", expand_as_rule);
  set_op_rules(rules, "channel_shuffle", channel_shuffle_rule);
  set_op_rules(rules, "__getitem__", getitem_rule);
  set_op_rules(rules, "prim::unchecked_cast", unchecked_cast_rule);
  set_op_rules(rules, "Int Float Bool item ScalarImplicit prim::NumToTensor size dim len numel", nothing_rule);
}

}  // namespace

PROFAGENT_PRUNE_RULES(shape, add_shape_rules)

}  // namespace profagent::torch_tk

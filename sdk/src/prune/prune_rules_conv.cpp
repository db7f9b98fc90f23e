// Pruning rules of compute ops and ops that keep a tensor's layout: convolutions (grouped, depthwise,
// transposed), linear / addmm / matmul, batch / group / layer norm, elementwise unary and binary ops
// with broadcasting, pooling and reductions. See prune_graph.hpp for what a rule declares.
#include <set>
#include <sstream>
#include <string>

#include "../profile/op_rule_table.hpp"
#include "profagent/prune/prune_graph.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Value;

void map_leading_dims(RuleContext& c, const Value* in, const Value* out, std::int64_t count) {
  for (std::int64_t d = 0; d < count; ++d) c.identity({in, d}, {out, d});
}

// ---- Convolutions ----
// aten::conv{1,2,3}d(input, weight, bias, stride, padding, dilation, groups)
// aten::_convolution / aten::convolution(input, weight, bias, stride, padding, dilation, transposed,
//   output_padding, groups, ...)
// aten::conv_transpose{1,2,3}d(input, weight, bias, stride, padding, output_padding, groups, dilation)
void conv_rule(RuleContext& c) {
  const std::string op = c.op();
  const bool full = op == "aten::_convolution" || op == "aten::convolution";
  const bool transposed = full ? c.bool_input(6).value_or(false) : op.rfind("aten::conv_transpose", 0) == 0;
  const std::size_t groups_input = full ? 8 : 6;
  const auto groups = c.int_input(groups_input);
  const Value* in = c.input(0);
  const Value* weight = c.input(1);
  const Value* out = c.output(0);
  auto in_shape = c.shape(in);
  auto w_shape = c.shape(weight);
  auto out_shape = c.shape(out);
  if (!groups || !in_shape || !w_shape || !out_shape || w_shape->size() < 3) {
    c.warn("cannot map " + c.where() + " (groups or shapes unknown): its tensors are frozen");
    c.freeze_all("unmapped convolution " + c.where());
    return;
  }
  const auto spatial = static_cast<std::int64_t>(w_shape->size()) - 2;
  const auto channel = static_cast<std::int64_t>(in_shape->size()) - spatial - 1;
  if (channel < 0) {
    c.freeze_all("unexpected input rank at " + c.where());
    return;
  }
  map_leading_dims(c, in, out, channel);
  const bool has_bias = !c.is_none(2);
  if (transposed) {
    // weight [in, out / groups, k...]
    if (*groups != 1) {
      c.warn("grouped transposed convolution " + c.where() + " is not mapped: its channels are frozen");
      c.freeze_all("grouped transposed convolution " + c.where());
      return;
    }
    c.identity({out, channel}, {weight, 1});
    c.role({weight, 1}, prune_role::kProducer, "conv");
    c.identity({in, channel}, {weight, 0});
    c.role({weight, 0}, prune_role::kConsumer, "conv");
    if (has_bias) {
      c.identity({c.input(2), 0}, {out, channel});
      c.role({c.input(2), 0}, prune_role::kBias, "conv");
    }
    return;
  }
  c.identity({out, channel}, {weight, 0});
  c.role({weight, 0}, prune_role::kProducer, "conv");
  if (has_bias) {
    c.identity({c.input(2), 0}, {out, channel});
    c.role({c.input(2), 0}, prune_role::kBias, "conv");
  }
  const std::int64_t g = *groups;
  const std::int64_t in_channels = (*in_shape)[static_cast<std::size_t>(channel)];
  const std::int64_t out_channels = (*w_shape)[0];
  if (g == 1) {
    c.identity({in, channel}, {weight, 1});
    c.role({weight, 1}, prune_role::kConsumer, "conv");
    return;
  }
  if (in_channels % g != 0 || out_channels % g != 0) {
    c.freeze_all("channels not divisible by groups at " + c.where());
    return;
  }
  const std::int64_t in_per_group = in_channels / g;
  const std::int64_t out_per_group = out_channels / g;
  if (in_per_group == 1) {
    // Depthwise (or a channel multiplier): input channel k owns its group's outputs; removing it
    // removes the group, so `groups` becomes the new number of input channels.
    for (std::int64_t k = 0; k < g; ++k) {
      for (std::int64_t r = 0; r < out_per_group; ++r) c.unite({in, channel}, k, {out, channel}, k * out_per_group + r);
    }
    c.int_edit(groups_input, -1, {in, channel});
    return;
  }
  // Grouped: every group must keep the same width, so index r within a group is one unit across all
  // groups, on both sides; `groups` stays.
  for (std::int64_t k = 1; k < g; ++k) {
    for (std::int64_t r = 0; r < out_per_group; ++r) c.unite({out, channel}, r, {out, channel}, k * out_per_group + r);
    for (std::int64_t r = 0; r < in_per_group; ++r) c.unite({in, channel}, r, {in, channel}, k * in_per_group + r);
  }
  c.map_range({weight, 1}, 0, {in, channel}, 0, in_per_group);
  c.role({weight, 1}, prune_role::kConsumer, "conv");
}

// ---- Linear layers ----
// aten::linear(input, weight [out, in], bias)
void linear_rule(RuleContext& c) {
  const Value* in = c.input(0);
  const Value* weight = c.input(1);
  const Value* out = c.output(0);
  auto in_shape = c.shape(in);
  auto w_shape = c.shape(weight);
  if (!in_shape || !w_shape || w_shape->size() != 2 || in_shape->empty()) {
    c.freeze_all("unmapped linear " + c.where());
    return;
  }
  const auto last = static_cast<std::int64_t>(in_shape->size()) - 1;
  map_leading_dims(c, in, out, last);
  c.identity({out, last}, {weight, 0});
  c.role({weight, 0}, prune_role::kProducer, "linear");
  c.identity({in, last}, {weight, 1});
  c.role({weight, 1}, prune_role::kConsumer, "linear");
  if (!c.is_none(2)) {
    c.identity({c.input(2), 0}, {out, last});
    c.role({c.input(2), 0}, prune_role::kBias, "linear");
  }
}

// a [..., n, k] @ b [..., k, m] → out [..., n, m]; batch dims broadcast. When b is a parameter (or a
// view of one, as in addmm(bias, x, weight.t())) its m dim produces and its k dim consumes.
void matmul_dims(RuleContext& c, const Value* a, const Value* b, const Value* out) {
  auto sa = c.shape(a);
  auto sb = c.shape(b);
  auto so = c.shape(out);
  if (!sa || !sb || !so || sa->size() < 2 || sb->size() < 2 || so->size() < 2) {
    c.freeze_all("matmul with a vector or unknown shape at " + c.where());
    return;
  }
  const auto ra = static_cast<std::int64_t>(sa->size());
  const auto rb = static_cast<std::int64_t>(sb->size());
  const auto ro = static_cast<std::int64_t>(so->size());
  c.identity({a, ra - 2}, {out, ro - 2});
  c.identity({b, rb - 1}, {out, ro - 1});
  c.identity({a, ra - 1}, {b, rb - 2});
  for (const auto& [value, rank, shape] : {std::tuple{a, ra, *sa}, std::tuple{b, rb, *sb}}) {
    for (std::int64_t d = 0; d < rank - 2; ++d) {
      const std::int64_t od = ro - rank + d;
      if (od < 0) continue;
      if (shape[static_cast<std::size_t>(d)] == (*so)[static_cast<std::size_t>(od)]) c.identity({value, d}, {out, od});
    }
  }
  c.role({b, rb - 1}, prune_role::kProducer, "linear");
  c.role({b, rb - 2}, prune_role::kConsumer, "linear");
}

void matmul_rule(RuleContext& c) { matmul_dims(c, c.input(0), c.input(1), c.output(0)); }

// aten::addmm(bias, mat1, mat2, beta, alpha) = bias + mat1 @ mat2
void addmm_rule(RuleContext& c) {
  matmul_dims(c, c.input(1), c.input(2), c.output(0));
  if (c.is_tensor(c.input(0))) {
    c.broadcast_to(c.input(0), c.output(0));
    auto bias = c.shape(c.input(0));
    if (bias && !bias->empty()) {
      c.role({c.input(0), static_cast<std::int64_t>(bias->size()) - 1}, prune_role::kBias, "linear");
    }
  }
}

// ---- Norms ----
// aten::batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn)
void batch_norm_rule(RuleContext& c) {
  const Value* in = c.input(0);
  c.identity_all_dims(in, c.output(0));
  const char* roles[] = {prune_role::kNorm, prune_role::kBias, prune_role::kBuffer, prune_role::kBuffer};
  for (std::size_t i = 1; i <= 4; ++i) {
    if (c.is_none(i)) continue;
    c.identity({c.input(i), 0}, {in, 1});
    c.role({c.input(i), 0}, roles[i - 1], "batch_norm");
  }
}

// aten::group_norm(input, num_groups, weight, bias, eps, cudnn): a group's statistics span its
// channels, so a unit is a whole group and num_groups follows the channel count.
void group_norm_rule(RuleContext& c) {
  const Value* in = c.input(0);
  auto shape = c.shape(in);
  auto groups = c.int_input(1);
  c.identity_all_dims(in, c.output(0));
  if (!shape || shape->size() < 2 || !groups || *groups <= 0 || (*shape)[1] % *groups != 0) {
    c.freeze({in, 1}, "group norm with unknown groups at " + c.where());
    return;
  }
  const std::int64_t per_group = (*shape)[1] / *groups;
  for (std::int64_t k = 0; k < *groups; ++k) {
    for (std::int64_t r = 1; r < per_group; ++r) c.unite({in, 1}, k * per_group, {in, 1}, k * per_group + r);
  }
  if (!c.is_none(2)) {
    c.identity({c.input(2), 0}, {in, 1});
    c.role({c.input(2), 0}, prune_role::kNorm, "group_norm");
  }
  if (!c.is_none(3)) {
    c.identity({c.input(3), 0}, {in, 1});
    c.role({c.input(3), 0}, prune_role::kBias, "group_norm");
  }
  c.int_edit(1, -1, {in, 1}, 1, per_group);
}

// aten::layer_norm(input, normalized_shape, weight, bias, eps, cudnn): the trailing normalised dims
// are the weight's and bias's dims, and normalized_shape follows them. Statistics span those dims, so
// removing a (zero) index there changes the result: not exact, but consistent.
void layer_norm_rule(RuleContext& c) {
  const Value* in = c.input(0);
  auto shape = c.shape(in);
  c.identity_all_dims(in, c.output(0));
  const Value* list = c.input(1);
  std::int64_t count = -1;
  if (auto ints = c.int_list_input(1)) {
    count = static_cast<std::int64_t>(ints->size());
  } else if (list->node()->kind() == c10::prim::ListConstruct) {
    count = static_cast<std::int64_t>(list->node()->inputs().size());
  }
  if (!shape || count < 0 || count > static_cast<std::int64_t>(shape->size())) {
    c.freeze_value(in, "layer norm with unknown normalized_shape at " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(shape->size());
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t d = rank - count + j;
    if (!c.is_none(2)) {
      c.identity({c.input(2), j}, {in, d});
      c.role({c.input(2), j}, prune_role::kNorm, "layer_norm");
    }
    if (!c.is_none(3)) {
      c.identity({c.input(3), j}, {in, d});
      c.role({c.input(3), j}, prune_role::kBias, "layer_norm");
    }
    c.int_edit(1, j, {in, d});
  }
}

// ---- Elementwise ----

// Output 0 has the shape of input 0 (dtype/device arguments, scalars and `other` of type_as ignored).
void unary_rule(RuleContext& c) {
  if (!c.is_tensor(c.output(0))) return;
  c.broadcast_to(c.input(0), c.output(0));
}

// Every tensor input broadcasts to the output.
void elementwise_rule(RuleContext& c) {
  if (c.num_outputs() == 0 || !c.is_tensor(c.output(0))) return;
  for (std::size_t i = 0; i < c.num_inputs(); ++i) {
    if (c.is_tensor(c.input(i))) c.broadcast_to(c.input(i), c.output(0));
  }
}

// aten::prelu(input, weight [C] or [1]): the weight follows the channel dim (1), not broadcasting.
void prelu_rule(RuleContext& c) {
  c.identity_all_dims(c.input(0), c.output(0));
  auto weight = c.shape(c.input(1));
  if (weight && weight->size() == 1 && (*weight)[0] > 1) {
    c.identity({c.input(1), 0}, {c.input(0), 1});
    c.role({c.input(1), 0}, prune_role::kOther, "prelu");
  }
}

// ---- Pooling and reductions ----

// Pooling over the last N dims (N from the op's name): every dim before them maps to the output.
void pooling_rule(RuleContext& c) {
  const std::string op = c.op();
  std::int64_t spatial = 2;
  if (op.find("1d") != std::string::npos) spatial = 1;
  if (op.find("3d") != std::string::npos) spatial = 3;
  auto in = c.shape(c.input(0));
  if (!in) {
    c.freeze_all("unknown shape at " + c.where());
    return;
  }
  const std::int64_t keep = static_cast<std::int64_t>(in->size()) - spatial;
  for (std::size_t k = 0; k < c.num_outputs(); ++k) {
    if (c.is_tensor(c.output(k))) map_leading_dims(c, c.input(0), c.output(k), keep);
  }
}

std::optional<std::size_t> argument_index(const torch::jit::Node* node, const std::string& name) {
  const auto* schema = node->maybeSchema();
  if (schema == nullptr) return std::nullopt;
  auto index = schema->argumentIndexWithName(name);
  if (!index) return std::nullopt;
  return static_cast<std::size_t>(*index);
}

// Reductions (mean, sum, amax, max.dim, ...): dims not reduced map to the output (shifted when
// keepdim is false). Reducing over a pruned dim is consistent (a sum of zeros is exact, a mean not).
void reduction_rule(RuleContext& c) {
  const torch::jit::Node* node = c.node();
  if (c.num_inputs() > 1 && c.is_tensor(c.input(1))) {  // aten::max(a, b): elementwise
    elementwise_rule(c);
    return;
  }
  auto in = c.shape(c.input(0));
  if (!in) {
    c.freeze_all("unknown shape at " + c.where());
    return;
  }
  const auto rank = static_cast<std::int64_t>(in->size());
  auto dim_index = argument_index(node, "dim");
  auto keep_index = argument_index(node, "keepdim");
  std::set<std::int64_t> reduced;
  if (!dim_index) {
    for (std::int64_t d = 0; d < rank; ++d) reduced.insert(d);  // reduces everything
  } else {
    auto dims = c.int_list_input(*dim_index);
    if (!dims) {
      if (c.is_none(*dim_index)) {
        for (std::int64_t d = 0; d < rank; ++d) reduced.insert(d);
      } else {
        c.freeze_all("reduction over non-constant dims at " + c.where());
        return;
      }
    } else if (dims->empty()) {
      for (std::int64_t d = 0; d < rank; ++d) reduced.insert(d);  // dim=[] reduces all
    } else {
      for (std::int64_t d : *dims) reduced.insert(rank == 0 ? 0 : (d % rank + rank) % rank);
    }
  }
  const bool keepdim = keep_index ? c.bool_input(*keep_index).value_or(false) : false;
  for (std::size_t k = 0; k < c.num_outputs(); ++k) {
    const Value* out = c.output(k);
    if (!c.is_tensor(out)) continue;
    std::int64_t od = 0;
    for (std::int64_t d = 0; d < rank; ++d) {
      if (reduced.count(d)) {
        if (keepdim) ++od;
        continue;
      }
      c.identity({c.input(0), d}, {out, od++});
    }
  }
}

void add_conv_rules(PruneRules& rules) {
  set_op_rules(rules, "conv1d conv2d conv3d _convolution convolution conv_transpose1d conv_transpose2d conv_transpose3d",
          conv_rule);
  set_op_rules(rules, "linear", linear_rule);
  set_op_rules(rules, "matmul mm bmm", matmul_rule);
  set_op_rules(rules, "addmm", addmm_rule);
  set_op_rules(rules, "batch_norm", batch_norm_rule);
  set_op_rules(rules, "group_norm", group_norm_rule);
  set_op_rules(rules, "layer_norm", layer_norm_rule);
  set_op_rules(rules, "prelu", prelu_rule);
  set_op_rules(rules,
          "relu relu6 gelu silu sigmoid tanh hardtanh hardswish hardsigmoid leaky_relu elu selu celu mish softplus "
          "softsign log_sigmoid threshold dropout feature_dropout alpha_dropout feature_alpha_dropout clone "
          "contiguous detach neg abs exp log log2 log1p sqrt rsqrt reciprocal sign square erf sin cos floor ceil "
          "round trunc to type_as softmax log_softmax _softmax _log_softmax zeros_like ones_like empty_like "
          "full_like rand_like randn_like nan_to_num bernoulli fill",
          unary_rule);
  set_op_rules(rules,
          "add sub rsub mul div true_divide floor_divide remainder fmod pow maximum minimum where masked_fill "
          "clamp clamp_min clamp_max clip lerp addcmul addcdiv eq ne lt le gt ge logical_and logical_or "
          "logical_not atan2 hypot",
          elementwise_rule);
  set_op_rules(rules,
          "max_pool1d max_pool2d max_pool3d max_pool2d_with_indices avg_pool1d avg_pool2d avg_pool3d "
          "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d "
          "adaptive_max_pool3d",
          pooling_rule);
  set_op_rules(rules, "mean sum amax amin max min prod std var logsumexp norm linalg_vector_norm argmax argmin",
          reduction_rule);
}

}  // namespace

PROFAGENT_PRUNE_RULES(conv, add_conv_rules)

}  // namespace profagent::torch_tk

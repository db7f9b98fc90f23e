// The built-in MAC-counting rules: one small counter per op family, the table of every op they
// cover, and the shape arithmetic the static profiler shares with them (mac_counting.hpp).
#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include "mac_counting.hpp"
#include "op_rule_table.hpp"

namespace profagent::torch_tk {

// ---------------------------------------------------------------------------------------------------
// Shapes

std::int64_t numel(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

// NumPy broadcasting, used to size an elementwise result whose traced type lost its shape.
Shape broadcast(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const std::int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    out[out.size() - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

std::string shape_text(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// ---------------------------------------------------------------------------------------------------
// Errors a rule returns: the profiler adds the model and the layer.

Status unknown_shape(const OpView& op, std::size_t input) {
  return Status(ErrorCode::kUnsupported, "the shape of input " + std::to_string(input) + " (%" +
                                             op.node().input(input)->debugName() + ") is unknown");
}

Status bad_shape(const std::string& what, const Shape& shape) {
  return Status(ErrorCode::kUnsupported, what + " has shape " + shape_text(shape));
}

// ---------------------------------------------------------------------------------------------------
// Counting rules: one small function per op family.

OpCount macs_of(const std::string& kind, std::int64_t macs) {
  OpCount count;
  count.macs.push_back({kind, macs, -1});
  return count;
}

bool is_transposed_conv(const OpView& op) {
  const std::string name = op.op();
  if (name.rfind("aten::conv_transpose", 0) == 0) return true;
  if (name == "aten::_convolution" || name == "aten::convolution") return op.bool_input(6).value_or(false);
  return false;
}

// Expands a per-dimension list given once ("stride=[2]") to every spatial dimension.
std::optional<Shape> per_dim(const std::optional<Shape>& list, std::size_t dims, std::int64_t fallback) {
  if (!list || list->empty()) return Shape(dims, fallback);
  if (list->size() == 1) return Shape(dims, (*list)[0]);
  if (list->size() != dims) return std::nullopt;
  return list;
}

// The output shape of a (non-transposed) convolution: stride, padding, dilation are inputs 3, 4, 5 in
// every form (aten::_convolution, aten::convolution, aten::conv2d, aten::_convolution_mode).
std::optional<Shape> conv_output_shape(const OpView& op, const Shape& input, const Shape& weight) {
  const std::size_t dims = weight.size() - 2;
  if (input.size() < dims + 1) return std::nullopt;
  auto stride = per_dim(op.int_list_input(3), dims, 1);
  auto dilation = per_dim(op.int_list_input(5), dims, 1);
  std::optional<Shape> padding;
  bool same = false;
  if (auto mode = op.string_input(4)) {
    same = *mode == "same";
    padding = Shape(dims, 0);
  } else {
    padding = per_dim(op.int_list_input(4), dims, 0);
  }
  if (!stride || !dilation || !padding) return std::nullopt;
  Shape out(input.begin(), input.end() - static_cast<std::ptrdiff_t>(dims));
  out.back() = weight[0];
  for (std::size_t d = 0; d < dims; ++d) {
    const std::int64_t in = input[input.size() - dims + d];
    const std::int64_t kernel = weight[2 + d];
    out.push_back(same ? in
                       : (in + 2 * (*padding)[d] - (*dilation)[d] * (kernel - 1) - 1) / (*stride)[d] + 1);
  }
  return out;
}

// The output shape of a transposed convolution: conv_transposeNd(input, weight, bias, stride, padding,
// output_padding, groups, dilation) or _convolution / convolution(input, weight, bias, stride, padding,
// dilation, transposed, output_padding, groups). The weight is [Cin, Cout / groups, kernel...].
std::optional<Shape> conv_transpose_output_shape(const OpView& op, const Shape& input, const Shape& weight) {
  const std::size_t dims = weight.size() - 2;
  if (input.size() < dims + 1) return std::nullopt;
  const bool functional = op.op().rfind("aten::conv_transpose", 0) == 0;
  auto stride = per_dim(op.int_list_input(3), dims, 1);
  auto padding = per_dim(op.int_list_input(4), dims, 0);
  auto output_padding = per_dim(op.int_list_input(functional ? 5 : 7), dims, 0);
  auto dilation = per_dim(op.int_list_input(functional ? 7 : 5), dims, 1);
  const std::int64_t groups = op.int_input(functional ? 6 : 8).value_or(1);
  if (!stride || !padding || !output_padding || !dilation) return std::nullopt;
  Shape out(input.begin(), input.end() - static_cast<std::ptrdiff_t>(dims));
  out.back() = weight[1] * groups;
  for (std::size_t d = 0; d < dims; ++d) {
    const std::int64_t in = input[input.size() - dims + d];
    out.push_back((in - 1) * (*stride)[d] - 2 * (*padding)[d] + (*dilation)[d] * (weight[2 + d] - 1) +
                  (*output_padding)[d] + 1);
  }
  return out;
}

// Every output element of a convolution takes (Cin / groups) × kernel MACs, which is exactly
// weight.numel() / Cout; a transposed one spreads each input element over (Cout / groups) × kernel.
Result<OpCount> count_conv(const OpView& op) {
  auto input = op.input_shape(0);
  auto weight = op.input_shape(1);
  if (!input) return unknown_shape(op, 0);
  if (!weight) return unknown_shape(op, 1);
  if (weight->size() < 3 || (*weight)[0] == 0) return bad_shape("the weight", *weight);
  const std::int64_t per_element = numel(*weight) / (*weight)[0];
  const bool transposed = is_transposed_conv(op);
  OpCount count;
  auto output = op.output_shape(0);
  if (!output) {
    output = transposed ? conv_transpose_output_shape(op, *input, *weight)
                        : conv_output_shape(op, *input, *weight);
    if (!output && !transposed) return unknown_shape(op, 0);
    count.inferred_output = output;
  }
  count.macs.push_back({"conv", (transposed ? numel(*input) : numel(*output)) * per_element, -1});
  return count;
}

void infer_if_missing(const OpView& op, OpCount& count, Shape shape) {
  if (!op.output_shape(0)) count.inferred_output = std::move(shape);
}

// input [*, K] × weight [N, K]: every input element meets N weights.
Result<OpCount> count_linear(const OpView& op) {
  auto input = op.input_shape(0);
  auto weight = op.input_shape(1);
  if (!input) return unknown_shape(op, 0);
  if (!weight) return unknown_shape(op, 1);
  if (input->empty()) return bad_shape("the input", *input);
  const std::int64_t out_features = weight->size() == 2 ? (*weight)[0] : 1;
  OpCount count = macs_of("linear", numel(*input) * out_features);
  Shape output(input->begin(), input->end() - 1);
  if (weight->size() == 2) output.push_back(out_features);
  infer_if_missing(op, count, std::move(output));
  return count;
}

// torch.matmul semantics for any ranks: batch dims broadcast, 1-D operands are a row / a column.
std::int64_t matmul_macs(const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) return 0;
  const std::int64_t k = a.back();
  const std::int64_t m = a.size() >= 2 ? a[a.size() - 2] : 1;
  const std::int64_t n = b.size() >= 2 ? b.back() : 1;
  const Shape batch_a(a.begin(), a.end() - std::min<std::ptrdiff_t>(2, a.size()));
  const Shape batch_b(b.begin(), b.end() - std::min<std::ptrdiff_t>(2, b.size()));
  return numel(broadcast(batch_a, batch_b)) * m * k * n;
}

Shape matmul_output_shape(const Shape& a, const Shape& b) {
  const Shape batch_a(a.begin(), a.end() - std::min<std::ptrdiff_t>(2, a.size()));
  const Shape batch_b(b.begin(), b.end() - std::min<std::ptrdiff_t>(2, b.size()));
  Shape out = broadcast(batch_a, batch_b);
  if (a.size() >= 2) out.push_back(a[a.size() - 2]);
  if (b.size() >= 2) out.push_back(b.back());
  return out;
}

// mm, bmm, matmul, mv, dot and their add* forms (the bias add is not a MAC). A product with a
// parameter is a linear layer written by hand; between two activations it is a "matmul".
OpCounter matmul_counter(std::size_t first) {
  return [first](const OpView& op) -> Result<OpCount> {
    auto a = op.input_shape(first);
    auto b = op.input_shape(first + 1);
    if (!a) return unknown_shape(op, first);
    if (!b) return unknown_shape(op, first + 1);
    const bool weight = op.input_reads_parameter(first) || op.input_reads_parameter(first + 1);
    OpCount count = macs_of(weight ? "linear" : "matmul", matmul_macs(*a, *b));
    count.kind = count.macs[0].kind;
    infer_if_missing(op, count, matmul_output_shape(*a, *b));
    return count;
  };
}

// One einsum term: a label per dimension; "..." becomes labels '0' + k (digits are no einsum label)
// counted from the right, so that broadcast dimensions of different operands share labels.
std::optional<std::vector<char>> einsum_labels(const std::string& term, std::size_t rank) {
  std::vector<char> labels;
  const auto dots = term.find("...");
  const std::string head = dots == std::string::npos ? term : term.substr(0, dots);
  const std::string tail = dots == std::string::npos ? "" : term.substr(dots + 3);
  const std::size_t named = head.size() + tail.size();
  if (named > rank || (dots == std::string::npos && named != rank)) return std::nullopt;
  labels.assign(head.begin(), head.end());
  for (std::size_t k = rank - named; k > 0; --k) labels.push_back(static_cast<char>('0' + k - 1));
  labels.insert(labels.end(), tail.begin(), tail.end());
  return labels;
}

// Contracts left to right, as torch.einsum does without a path: each pairwise step costs the
// product of the sizes of every label either side has.
Result<OpCount> count_einsum(const OpView& op) {
  auto equation = op.string_input(0);
  if (!equation) return Status(ErrorCode::kUnsupported, "the equation is not a constant");
  std::string eq;
  for (char c : *equation) {
    if (!std::isspace(static_cast<unsigned char>(c))) eq += c;
  }
  const auto arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  auto shapes = op.list_input_shapes(1);
  std::vector<std::vector<char>> operands;
  std::map<char, std::int64_t> sizes;
  std::map<char, int> uses;
  std::size_t start = 0;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const std::size_t comma = lhs.find(',', start);
    const std::string term =
        lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? lhs.size() : comma + 1;
    if (!shapes[i])
      return Status(ErrorCode::kUnsupported, "the shape of operand " + std::to_string(i) + " is unknown");
    auto labels = einsum_labels(term, shapes[i]->size());
    if (!labels)
      return Status(ErrorCode::kUnsupported, "term '" + term + "' does not fit " + shape_text(*shapes[i]));
    for (std::size_t d = 0; d < labels->size(); ++d) {
      sizes[(*labels)[d]] = std::max(sizes[(*labels)[d]], (*shapes[i])[d]);
      ++uses[(*labels)[d]];
    }
    operands.push_back(std::move(*labels));
  }
  std::set<char> output;
  if (arrow != std::string::npos) {
    for (char c : eq.substr(arrow + 2)) output.insert(c);
    for (const auto& [label, size] : sizes) {
      if (std::isdigit(static_cast<unsigned char>(label))) output.insert(label);
    }
  } else {
    for (const auto& [label, count] : uses) {
      if (count == 1 || std::isdigit(static_cast<unsigned char>(label))) output.insert(label);
    }
  }
  OpCount count;
  count.kind = op.input_reads_parameter(1) ? "linear" : "matmul";
  if (operands.size() < 2) {
    count.other_elements = op.output_shape(0) ? numel(*op.output_shape(0)) : 0;
    return count;
  }
  std::set<char> current(operands[0].begin(), operands[0].end());
  std::int64_t macs = 0;
  for (std::size_t i = 1; i < operands.size(); ++i) {
    current.insert(operands[i].begin(), operands[i].end());
    std::int64_t step = 1;
    for (char label : current) step *= sizes[label];
    macs += step;
    std::set<char> needed = output;
    for (std::size_t j = i + 1; j < operands.size(); ++j)
      needed.insert(operands[j].begin(), operands[j].end());
    std::set<char> kept;
    for (char label : current) {
      if (needed.count(label)) kept.insert(label);
    }
    current = std::move(kept);
  }
  count.macs.push_back({count.kind, macs, -1});
  return count;
}

// q [..., L, E] · k [..., S, E]^T, then the weights [..., L, S] · v [..., S, Ev].
Result<OpCount> count_sdpa(const OpView& op) {
  auto q = op.input_shape(0);
  auto k = op.input_shape(1);
  auto v = op.input_shape(2);
  if (!q) return unknown_shape(op, 0);
  if (!k) return unknown_shape(op, 1);
  if (!v) return unknown_shape(op, 2);
  if (q->size() < 2 || k->size() < 2 || v->empty() || q->back() == 0) return bad_shape("the query", *q);
  const std::int64_t rows = numel(*q) / q->back();  // batch × heads × L
  const std::int64_t s = (*k)[k->size() - 2];
  OpCount count = macs_of("attention", rows * s * q->back() + rows * s * v->back());
  Shape output(q->begin(), q->end() - 1);
  output.push_back(v->back());
  infer_if_missing(op, count, std::move(output));
  return count;
}

// aten::_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
// proj_weight, proj_bias, ...): the fused fast path of nn.MultiheadAttention that torchvision's ViT
// takes in eval + no_grad. Heads split E, so QK^T and AV cost rows × S × E each whatever the heads.
Result<OpCount> count_native_mha(const OpView& op) {
  std::vector<Shape> in;
  for (std::size_t i : {0, 1, 2, 5, 7}) {
    auto shape = op.input_shape(i);
    if (!shape) return unknown_shape(op, i);
    if (shape->empty()) return bad_shape("input " + std::to_string(i), *shape);
    in.push_back(*shape);
  }
  const Shape& q = in[0];
  const Shape& k = in[1];
  const Shape& v = in[2];
  const std::int64_t width = in[3][0] / 3;  // qkv_weight [3E, E]
  const std::int64_t out_width = in[4][0];  // proj_weight [E, E]
  const std::int64_t q_rows = numel(q) / q.back();
  const std::int64_t s = k.size() >= 2 ? k[k.size() - 2] : 1;
  OpCount count;
  count.macs.push_back({"linear", (numel(q) + numel(k) + numel(v)) * width, 5});
  count.macs.push_back({"attention", 2 * q_rows * s * width, 5});
  count.macs.push_back({"linear", q_rows * width * out_width, 7});
  Shape output(q.begin(), q.end() - 1);
  output.push_back(out_width);
  infer_if_missing(op, count, std::move(output));
  return count;
}

// ---------------------------------------------------------------------------------------------------
// The built-in table

OpRule compute(const std::string& kind, OpCounter count) {
  return OpRule{kind, OpCategory::kCompute, std::move(count), false};
}
OpRule other(const std::string& kind) {
  return OpRule{kind, OpCategory::kOther, nullptr, false};
}
OpRule data(bool is_view) {
  return OpRule{"data", OpCategory::kData, nullptr, is_view};
}

}  // namespace

OpRules make_builtin_rules() {
  OpRules rules;
  set_op_rules(rules,
          "_convolution convolution conv1d conv2d conv3d _convolution_mode conv_transpose1d conv_transpose2d "
          "conv_transpose3d mkldnn_convolution",
          compute("conv", count_conv));
  set_op_rules(rules, "linear", compute("linear", count_linear));
  set_op_rules(rules, "matmul mm bmm mv dot vdot", compute("matmul", matmul_counter(0)));
  set_op_rules(rules, "addmm baddbmm addbmm addmv", compute("matmul", matmul_counter(1)));
  set_op_rules(rules, "einsum", compute("matmul", count_einsum));
  set_op_rules(rules,
          "scaled_dot_product_attention _scaled_dot_product_attention _scaled_dot_product_attention_math "
          "_scaled_dot_product_flash_attention _scaled_dot_product_efficient_attention",
          compute("attention", count_sdpa));
  set_op_rules(rules, "_native_multi_head_attention", compute("attention", count_native_mha));
  // Quantized ops read their weight from packed parameters, whose unpacked weight shape the profile
  // gives as the shape of that input (static_profile.cpp): the float formulas apply as they are.
  set_op_rules(rules,
               "quantized::conv1d quantized::conv1d_relu quantized::conv2d quantized::conv2d_relu "
               "quantized::conv3d quantized::conv3d_relu",
               compute("conv", count_conv));
  set_op_rules(
      rules,
      "quantized::linear quantized::linear_relu quantized::linear_dynamic quantized::linear_relu_dynamic "
      "quantized::linear_dynamic_fp16 quantized::linear_relu_dynamic_fp16 "
      "quantized::linear_with_input_q_dq_qweight_dq_output_fp32",
      compute("linear", count_linear));
  set_op_rules(
      rules,
      "quantized::add quantized::add_relu quantized::add_scalar quantized::add_scalar_relu quantized::mul "
      "quantized::mul_relu quantized::mul_scalar",
      other("elementwise"));
  set_op_rules(rules, "quantize_per_tensor quantize_per_channel dequantize quantized::cat", data(false));

  set_op_rules(
      rules,
      "batch_norm _batch_norm_impl_index native_batch_norm _native_batch_norm_legit_no_training layer_norm "
      "native_layer_norm group_norm native_group_norm instance_norm rms_norm local_response_norm normalize",
      other("norm"));
  set_op_rules(rules,
          "relu relu6 gelu silu sigmoid tanh hardtanh hardswish hardsigmoid leaky_relu elu selu celu mish "
          "softplus softsign prelu glu log_sigmoid threshold rrelu",
          other("activation"));
  set_op_rules(rules, "softmax _softmax log_softmax _log_softmax", other("softmax"));
  set_op_rules(
      rules,
      "add sub rsub mul div true_divide floor_divide remainder fmod pow sqrt rsqrt exp log log2 log1p neg "
      "abs reciprocal clamp clamp_min clamp_max clip maximum minimum where masked_fill eq ne lt le gt ge "
      "logical_and logical_or logical_not bitwise_and bitwise_or bitwise_not erf sin cos floor ceil round "
      "trunc sign square addcmul addcdiv lerp hypot atan2 isnan nan_to_num",
      other("elementwise"));
  set_op_rules(
      rules,
      "max_pool1d max_pool2d max_pool3d max_pool2d_with_indices avg_pool1d avg_pool2d avg_pool3d "
      "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d "
      "adaptive_max_pool3d lp_pool2d",
      other("pooling"));
  set_op_rules(
      rules,
      "mean sum amax amin max min prod std var norm linalg_vector_norm argmax argmin cumsum logsumexp all "
      "any topk sort",
      other("reduction"));
  set_op_rules(rules,
          "upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_bilinear2d upsample_bicubic2d "
          "upsample_linear1d upsample_trilinear3d grid_sampler grid_sampler_2d",
          other("resample"));
  set_op_rules(rules, "embedding embedding_bag", other("embedding"));

  // Views, and ops that are no-ops in eval (dropout): no new tensor.
  set_op_rules(
      rules,
      "view reshape _reshape_alias permute transpose t numpy_T mT select slice narrow expand expand_as "
      "unsqueeze squeeze flatten unflatten unbind split split_with_sizes chunk tensor_split detach alias "
      "view_as reshape_as as_strided diagonal movedim swapaxes unfold dropout feature_dropout alpha_dropout "
      "feature_alpha_dropout lift_fresh real conj resolve_conj resolve_neg",
      data(true));
  // Data movement that writes a new tensor.
  set_op_rules(
      rules,
      "contiguous cat concat stack hstack vstack pad constant_pad_nd reflection_pad1d reflection_pad2d "
      "replication_pad1d replication_pad2d roll copy clone to type_as _to_copy index index_select gather "
      "scatter scatter_add index_put masked_select masked_scatter new_zeros new_ones new_full new_empty "
      "zeros ones full empty zeros_like ones_like full_like empty_like rand randn rand_like randn_like fill "
      "zero arange linspace repeat repeat_interleave tile flip channel_shuffle pixel_shuffle pixel_unshuffle "
      "im2col col2im tril triu one_hot scalar_tensor tensor as_tensor",
      data(false));
  return rules;
}

// Counts an op of no registered kind: its output elements, so that it is at least visible.
const OpRule& unrecognized_rule() {
  static const OpRule rule = other("other");
  return rule;
}

}  // namespace profagent::torch_tk

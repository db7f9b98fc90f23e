#include "profagent/profile/static_profile.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include "profagent/torch/errors.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/torch/ir_constants.hpp"
#include "profagent/clock.hpp"
#include "profagent/extension.hpp"
#include "profagent/log.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Node;
using torch::jit::Value;

// ---------------------------------------------------------------------------------------------------
// Shapes

std::int64_t numel(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

std::optional<Shape> complete_shape(const Value* value) {
  auto type = value->type()->cast<c10::TensorType>();
  if (!type) return std::nullopt;
  auto sizes = type->sizes().concrete_sizes();
  if (!sizes) return std::nullopt;
  return Shape(sizes->begin(), sizes->end());
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
// The built-in registry

OpRule compute(const std::string& kind, OpCounter count) {
  return OpRule{kind, OpCategory::kCompute, std::move(count), false};
}
OpRule other(const std::string& kind) {
  return OpRule{kind, OpCategory::kOther, nullptr, false};
}
OpRule data(bool is_view) {
  return OpRule{"data", OpCategory::kData, nullptr, is_view};
}

// `ops`: aten op names separated by spaces.
void set_all(OpRules& rules, const std::string& ops, const OpRule& rule) {
  std::istringstream names(ops);
  std::string name;
  while (names >> name) rules.set("aten::" + name, rule);
}

OpRules make_builtin_rules() {
  OpRules rules;
  set_all(rules,
          "_convolution convolution conv1d conv2d conv3d _convolution_mode conv_transpose1d conv_transpose2d "
          "conv_transpose3d mkldnn_convolution",
          compute("conv", count_conv));
  set_all(rules, "linear", compute("linear", count_linear));
  set_all(rules, "matmul mm bmm mv dot vdot", compute("matmul", matmul_counter(0)));
  set_all(rules, "addmm baddbmm addbmm addmv", compute("matmul", matmul_counter(1)));
  set_all(rules, "einsum", compute("matmul", count_einsum));
  set_all(rules,
          "scaled_dot_product_attention _scaled_dot_product_attention _scaled_dot_product_attention_math "
          "_scaled_dot_product_flash_attention _scaled_dot_product_efficient_attention",
          compute("attention", count_sdpa));
  set_all(rules, "_native_multi_head_attention", compute("attention", count_native_mha));

  set_all(
      rules,
      "batch_norm _batch_norm_impl_index native_batch_norm _native_batch_norm_legit_no_training layer_norm "
      "native_layer_norm group_norm native_group_norm instance_norm rms_norm local_response_norm normalize",
      other("norm"));
  set_all(rules,
          "relu relu6 gelu silu sigmoid tanh hardtanh hardswish hardsigmoid leaky_relu elu selu celu mish "
          "softplus softsign prelu glu log_sigmoid threshold rrelu",
          other("activation"));
  set_all(rules, "softmax _softmax log_softmax _log_softmax", other("softmax"));
  set_all(
      rules,
      "add sub rsub mul div true_divide floor_divide remainder fmod pow sqrt rsqrt exp log log2 log1p neg "
      "abs reciprocal clamp clamp_min clamp_max clip maximum minimum where masked_fill eq ne lt le gt ge "
      "logical_and logical_or logical_not bitwise_and bitwise_or bitwise_not erf sin cos floor ceil round "
      "trunc sign square addcmul addcdiv lerp hypot atan2 isnan nan_to_num",
      other("elementwise"));
  set_all(
      rules,
      "max_pool1d max_pool2d max_pool3d max_pool2d_with_indices avg_pool1d avg_pool2d avg_pool3d "
      "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d "
      "adaptive_max_pool3d lp_pool2d",
      other("pooling"));
  set_all(
      rules,
      "mean sum amax amin max min prod std var norm linalg_vector_norm argmax argmin cumsum logsumexp all "
      "any topk sort",
      other("reduction"));
  set_all(rules,
          "upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_bilinear2d upsample_bicubic2d "
          "upsample_linear1d upsample_trilinear3d grid_sampler grid_sampler_2d",
          other("resample"));
  set_all(rules, "embedding embedding_bag", other("embedding"));

  // Views, and ops that are no-ops in eval (dropout): no new tensor.
  set_all(
      rules,
      "view reshape _reshape_alias permute transpose t numpy_T mT select slice narrow expand expand_as "
      "unsqueeze squeeze flatten unflatten unbind split split_with_sizes chunk tensor_split detach alias "
      "view_as reshape_as as_strided diagonal movedim swapaxes unfold dropout feature_dropout alpha_dropout "
      "feature_alpha_dropout lift_fresh real conj resolve_conj resolve_neg",
      data(true));
  // Data movement that writes a new tensor.
  set_all(
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

// ---------------------------------------------------------------------------------------------------
// Which module's forward executed each op: the interpreter opens a RecordFunction frame (scope
// TORCHSCRIPT_FUNCTION) for every method or function it calls, with the arguments as inputs; a method's
// first argument is the module object. Nodes the tracer appended while a frame was innermost belong to
// that frame's module; free functions (F.relu, torchvision helpers) keep their caller's.
//
// RecordFunction::inputs() is only readable when this file and LibTorch agree on NDEBUG (the class
// has a debug-only member); release LibTorch with a debug build of ours would read garbage.
#ifdef NDEBUG
constexpr bool kCanReadFrameInputs = true;
#else
constexpr bool kCanReadFrameInputs = false;
#endif

class ScopeRecorder {
 public:
  explicit ScopeRecorder(const torch::jit::Module& root) {
    for (const auto& entry : root.named_modules()) paths_[entry.value._ivalue().get()] = entry.name;
  }
  ScopeRecorder(const ScopeRecorder&) = delete;
  ScopeRecorder& operator=(const ScopeRecorder&) = delete;
  ~ScopeRecorder() { stop(); }

  void start() {
    if (!kCanReadFrameInputs) return;
    active_ = this;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(&ScopeRecorder::on_enter, &ScopeRecorder::on_exit)
            .needsInputs(true)
            .scopes({at::RecordScope::TORCHSCRIPT_FUNCTION}));
    started_ = true;
  }
  void stop() {
    if (!started_) return;
    at::removeCallback(handle_);
    active_ = nullptr;
    started_ = false;
  }

  bool usable() const { return frames_seen_ > 0 && !failed_; }
  std::unordered_map<const Node*, std::string> take_scopes() { return std::move(scopes_); }

 private:
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& frame) {
    if (active_ != nullptr) active_->enter(frame);
    return nullptr;
  }
  static void on_exit(const at::RecordFunction&, at::ObserverContext*) {
    if (active_ != nullptr) active_->exit();
  }

  void enter(const at::RecordFunction& frame) noexcept {
    try {
      assign_new_nodes();
      std::string path = stack_.empty() ? std::string() : stack_.back();
      auto inputs = frame.inputs();
      if (!inputs.empty() && inputs[0].isObject()) {
        auto found = paths_.find(&inputs[0].toObjectRef());
        if (found != paths_.end()) path = found->second;
      }
      stack_.push_back(std::move(path));
      ++frames_seen_;
    } catch (...) {
      failed_ = true;
    }
  }
  void exit() noexcept {
    try {
      assign_new_nodes();
      if (!stack_.empty()) stack_.pop_back();
    } catch (...) {
      failed_ = true;
    }
  }

  // The tracer only appends to its graph, so the nodes after the last one seen were all recorded
  // while the current frame was innermost.
  void assign_new_nodes() {
    auto state = torch::jit::tracer::getTracingState();
    if (!state) return;
    torch::jit::Block* block = state->graph->block();
    if (graph_ != state->graph.get()) {
      graph_ = state->graph.get();
      last_ = nullptr;
    }
    Node* node = last_ != nullptr ? last_->next() : *block->nodes().begin();
    const std::string& path = stack_.empty() ? root_ : stack_.back();
    for (; node != block->return_node(); node = node->next()) {
      scopes_[node] = path;
      last_ = node;
    }
  }

  static thread_local ScopeRecorder* active_;
  std::unordered_map<const c10::ivalue::Object*, std::string> paths_;
  std::vector<std::string> stack_;
  std::unordered_map<const Node*, std::string> scopes_;
  const torch::jit::Graph* graph_ = nullptr;
  Node* last_ = nullptr;
  const std::string root_;
  at::CallbackHandle handle_ = 0;
  bool started_ = false;
  bool failed_ = false;
  std::int64_t frames_seen_ = 0;
};

thread_local ScopeRecorder* ScopeRecorder::active_ = nullptr;

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
      if (node->kind() != c10::prim::GetAttr || !node->output()->type()->cast<c10::TensorType>()) continue;
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
      c10::IValue tensor = owner.toObject()->getAttr(names.back());
      if (!tensor.isTensor() || !tensor.toTensor().defined()) continue;
      attributes_[node->output()] = Attribute{path, Shape(tensor.toTensor().sizes().vec())};
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
    for (const auto& entry : traced_.module.named_buffers(/*recurse=*/true)) {
      if (!seen.insert(entry.value.unsafeGetTensorImpl()).second) continue;
      const std::int64_t bytes = entry.value.numel() * static_cast<std::int64_t>(entry.value.element_size());
      pending_buffers_[owner_of(entry.name)] += bytes;
      profile_.buffer_bytes += bytes;
    }
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

Json kinds_json(const std::map<std::string, KindStats>& kinds) {
  Json out = Json::object();
  for (const auto& [kind, stats] : kinds) out[kind] = kind_json(stats);
  return out;
}

void collect_input_shapes(const c10::IValue& value, std::vector<Shape>& shapes) {
  if (value.isTensor()) {
    shapes.push_back(value.toTensor().sizes().vec());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTupleRef().elements()) collect_input_shapes(element, shapes);
  } else if (value.isList()) {
    for (const auto& element : value.toListRef()) collect_input_shapes(element, shapes);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// OpView

std::optional<Shape> OpView::input_shape(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return facts_.shape(node_.input(i));
}

std::optional<Shape> OpView::output_shape(std::size_t i) const {
  if (i >= node_.outputs().size()) return std::nullopt;
  return facts_.shape(node_.output(i));
}

std::vector<std::optional<Shape>> OpView::list_input_shapes(std::size_t i) const {
  std::vector<std::optional<Shape>> shapes;
  if (i >= node_.inputs().size()) return shapes;
  const Node* producer = node_.input(i)->node();
  if (producer->kind() != c10::prim::ListConstruct) return shapes;
  for (const Value* element : producer->inputs()) shapes.push_back(facts_.shape(element));
  return shapes;
}

bool OpView::input_reads_parameter(std::size_t i) const {
  return i < node_.inputs().size() && facts_.reads_parameter(node_.input(i));
}

std::optional<std::int64_t> OpView::int_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_int(node_.input(i));
}

std::optional<std::vector<std::int64_t>> OpView::int_list_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_int_list(node_.input(i));
}

std::optional<bool> OpView::bool_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_bool(node_.input(i));
}

std::optional<std::string> OpView::string_input(std::size_t i) const {
  if (i >= node_.inputs().size()) return std::nullopt;
  return ir::constant_string(node_.input(i));
}

// ---------------------------------------------------------------------------------------------------
// OpRules

const OpRules& OpRules::builtin() {
  static const OpRules rules = make_builtin_rules();
  return rules;
}

const OpRules& OpRules::registered() {
  static auto* cache = new ExtensionSnapshots<OpRules>();
  return cache->get([] {
    OpRules rules = builtin();
    for (const auto& [op, value] : extensions(kMacRulePoint)) rules.set(op, *std::static_pointer_cast<const OpRule>(value));
    return rules;
  });
}

void add_mac_rule(Registrar& registrar, const std::string& op, OpRule rule) {
  const std::string what = "add_mac_rule(" + op + "): ";
  if (op.find("::") == std::string::npos || op.size() < 4)
    throw std::invalid_argument(what + "not a qualified op symbol (e.g. aten::softshrink, myops::scale)");
  if (rule.kind.empty()) throw std::invalid_argument(what + "the rule has no kind");
  if (rule.category == OpCategory::kCompute && !rule.count)
    throw std::invalid_argument(what + "a kCompute rule needs a count function (it is what gives the MACs)");
  if (OpRules::builtin().find(op) != nullptr)
    throw std::invalid_argument(what + "the op has a built-in counting rule; a plugin may add rules for ops the "
                                       "built-ins lack, not replace one (to replace it for one profile, pass a "
                                       "copy of OpRules::registered() with the rule set in StaticProfileOptions::rules)");
  registrar.add_extension(kMacRulePoint, op, std::make_shared<const OpRule>(std::move(rule)));
}

const OpRule* OpRules::find(const std::string& op) const {
  auto found = rules_.find(op);
  if (found != rules_.end()) return &found->second;
  if (!op.empty() && op.back() == '_') {
    found = rules_.find(op.substr(0, op.size() - 1));
    if (found != rules_.end()) return &found->second;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------
// Profiles

Json LayerProfile::to_json() const {
  return Json{{"name", name},
              {"kind", kind},
              {"params", params},
              {"param_bytes", param_bytes},
              {"buffer_bytes", buffer_bytes},
              {"macs", macs},
              {"ops", ops},
              {"other_ops", other_ops},
              {"other_elements", other_elements},
              {"activation_bytes", activation_bytes},
              {"kinds", kinds_json(kinds)}};
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
  out["total"] = Json{{"params", params},
                      {"param_bytes", param_bytes},
                      {"buffer_bytes", buffer_bytes},
                      {"macs", macs},
                      {"ops", ops},
                      {"other_ops", other_ops},
                      {"other_elements", other_elements},
                      {"activation_bytes", activation_bytes}};
  out["kinds"] = kinds_json(kinds);
  Json list = Json::array();
  for (const LayerProfile& layer : layers) list.push_back(layer.to_json());
  out["layers"] = std::move(list);
  out["unrecognized_ops"] = unrecognized_ops;
  out["inferred_shapes"] = inferred_shapes;
  out["attribution"] = attribution;
  out["seconds"] = seconds;
  return out;
}

Result<TracedModel> trace_for_profile(const torch::jit::Module& module,
                                      const std::vector<torch::jit::IValue>& inputs,
                                      const std::string& model_name) {
  const auto start = std::chrono::steady_clock::now();
  TracedModel traced;
  traced.model = model_name;
  if (traced.model.empty()) traced.model = module.type()->name() ? module.type()->name()->name() : "model";
  for (const auto& input : inputs) collect_input_shapes(input, traced.input_shapes);
  try {
    // A copy sharing the tensors: eval() must not change the caller's module, and its methods must
    // have no executor yet, because an executor made with optimizations has inlined every submodule
    // call and would run no frame a scope could be read from.
    traced.module = module.clone(/*inplace=*/true);
    traced.module.eval();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime,
                  "static profile of " + traced.model + ": cannot copy the module: " + torch_error_reason(e));
  }
  ScopeRecorder recorder(traced.module);
  try {
    torch::NoGradGuard no_grad;  // also what makes nn.MultiheadAttention take its fused fast path
    torch::jit::GraphOptimizerEnabledGuard no_inlining(false);
    recorder.start();
    auto result = torch::jit::tracer::trace(
        torch::jit::Stack(inputs.begin(), inputs.end()),
        [&traced](torch::jit::Stack args) -> torch::jit::Stack {
          // The tracer refuses None in an output (googlenet's NamedTuple in eval mode): it gets the
          // output's tensors, which is all a profile needs of it.
          const std::vector<torch::Tensor> tensors =
              output_tensors(traced.module.forward(std::vector<c10::IValue>(args.begin(), args.end())));
          return torch::jit::Stack(tensors.begin(), tensors.end());
        },
        [](const at::Tensor&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/false,
        &traced.module);
    recorder.stop();
    traced.graph = result.first->graph;
  } catch (const std::exception& e) {
    recorder.stop();
    return Status(ErrorCode::kRuntime, "static profile of " + traced.model +
                                           ": the forward pass failed while tracing: " + torch_error_reason(e));
  }
  traced.has_scopes = recorder.usable();
  traced.scopes = recorder.take_scopes();
  if (!traced.has_scopes) {
    log().warn(
        "static profile of {}: no module scopes recorded; parameter-free ops go to their producer's layer",
        traced.model);
  }
  traced.seconds = seconds_since(start);
  return traced;
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

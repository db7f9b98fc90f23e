// BatchNorm folded into the convolution before it, on a frozen graph whose weights are constants.
#include <torch/csrc/jit/ir/constants.h>

#include "static_internal.hpp"

namespace profagent::quantize {

namespace {

std::optional<double> fold_constant_double(const Value* value) {
  auto ivalue = torch::jit::toIValue(value);
  if (!ivalue || !ivalue->isDouble()) return std::nullopt;
  return ivalue->toDouble();
}

std::optional<bool> fold_constant_bool(const Value* value) {
  auto ivalue = torch::jit::toIValue(value);
  if (!ivalue || !ivalue->isBool()) return std::nullopt;
  return ivalue->toBool();
}

}  // namespace

// aten::batch_norm(input, weight?, bias?, running_mean?, running_var?, training, momentum, eps, cudnn)
std::unordered_map<const Node*, FoldedBatchNorm> fold_conv_batch_norms(Graph& graph) {
  std::unordered_map<const Node*, FoldedBatchNorm> folded;
  std::vector<Node*> norms;
  for (Node* node : graph.nodes()) {
    if (node->kind() == c10::aten::batch_norm) norms.push_back(node);
  }
  for (Node* norm : norms) {
    Node* conv = norm->input(0)->node();
    if (conv->kind() != c10::aten::conv2d || conv->output()->uses().size() != 1) continue;
    auto weight = constant_tensor(conv->input(1));
    auto mean = constant_tensor(norm->input(3));
    auto var = constant_tensor(norm->input(4));
    auto training = fold_constant_bool(norm->input(5));
    auto eps = fold_constant_double(norm->input(7));
    if (!weight || !mean || !var || !training || *training || !eps) continue;
    const std::int64_t channels = weight->size(0);
    auto gamma = constant_tensor(norm->input(1));
    auto beta = constant_tensor(norm->input(2));
    auto bias = constant_tensor(conv->input(2));
    at::Tensor g = gamma ? *gamma : at::ones({channels}, weight->options());
    at::Tensor b = beta ? *beta : at::zeros({channels}, weight->options());
    at::Tensor conv_bias = bias ? *bias : at::zeros({channels}, weight->options());
    // Folded in double, so the fold itself adds no error next to int8's.
    at::Tensor inv_std = (var->to(at::kDouble) + *eps).rsqrt() * g.to(at::kDouble);
    at::Tensor new_weight =
        (weight->to(at::kDouble) * inv_std.reshape({channels, 1, 1, 1})).to(weight->scalar_type());
    at::Tensor new_bias = ((conv_bias.to(at::kDouble) - mean->to(at::kDouble)) * inv_std + b.to(at::kDouble))
                              .to(weight->scalar_type());
    torch::jit::WithInsertPoint guard(conv);
    conv->replaceInput(1, graph.insertConstant(new_weight));
    conv->replaceInput(2, graph.insertConstant(new_bias));
    std::int64_t bytes = 0;
    for (const auto& t : {gamma, beta, mean, var}) {
      if (t) bytes += t->numel() * static_cast<std::int64_t>(t->element_size());
    }
    folded[conv].bytes = bytes;
    norm->output()->replaceAllUsesWith(conv->output());
    norm->destroy();
  }
  return folded;
}

}  // namespace profagent::quantize

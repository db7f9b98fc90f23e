// The folded fp32 graph rewritten into quantized ops: packed weights in holder modules at each layer's
// path, quantize where a quantized region starts, dequantize where an fp32 reader or the output needs it.
#include "static_rewrite.hpp"

#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <unordered_set>

namespace profagent::quantize {

namespace {

constexpr const char* kRewritePackedAttribute = "_packed_params";

std::vector<std::string> rewrite_split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (!path.empty() && start <= path.size()) {
    const std::size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

}  // namespace

StaticRewriter::StaticRewriter(torch::jit::Module& root, Graph& graph) : root_(root), graph_(graph) {}

Result<Value*> StaticRewriter::attach(const std::string& path, const std::string& name,
                                      const c10::IValue& value, bool parameter) {
  torch::jit::Module current = root_;
  Value* chain = graph_.inputs().at(0);
  for (const std::string& part : rewrite_split_path(path)) {
    if (!current.hasattr(part)) {
      // An empty module of its own type: it holds the layer's weights and nothing else.
      torch::jit::Module holder(c10::QualifiedName("__torch__.profagent.quantized.QuantizedLayer"),
                                root_._ivalue()->compilation_unit(), /*shouldMangle=*/true);
      if (!holder.hasattr("training")) holder.register_attribute("training", c10::BoolType::get(), false);
      current.register_module(part, holder);
    }
    c10::IValue child = current.attr(part);
    if (!child.isObject() || !child.toObject()->type()->is_module())
      return Status(
          ErrorCode::kInternal,
          "layer '" + path + "': the frozen model has a non-module attribute '" + part + "' on the way");
    current = torch::jit::Module(child.toObject());
    chain = graph_.insertGetAttr(chain, part);
  }
  std::string attribute = name;
  for (int n = 1; current.hasattr(attribute); ++n) attribute = name + "_" + std::to_string(n);
  if (parameter) {
    current.register_parameter(attribute, value.toTensor(), /*is_buffer=*/false);
  } else {
    current.register_attribute(attribute, value.type(), value);
  }
  return graph_.insertGetAttr(chain, attribute);
}

Result<Value*> StaticRewriter::attach_packed(const std::string& path, const c10::IValue& packed) {
  return attach(path, kRewritePackedAttribute, packed, /*parameter=*/false);
}

Value* StaticRewriter::quantized_input(Value* value, const QuantParams& params, bool channels_last) {
  auto twin = quantized_.find(value);
  if (twin != quantized_.end()) return twin->second;
  auto entered = entries_.find(value);
  if (entered != entries_.end()) return entered->second;
  Value* input = value;
  if (channels_last) {
    // oneDNN's int8 convolutions run channels-last: converting once here saves a reorder in every conv.
    input = graph_.insert(
        c10::aten::contiguous, {value},
        {torch::jit::NamedValue("memory_format", c10::IValue(c10::MemoryFormat::ChannelsLast))});
  }
  Value* quantized = graph_.insert(
      c10::aten::quantize_per_tensor,
      {input, params.scale, params.zero_point, c10::IValue(static_cast<std::int64_t>(at::kQUInt8))});
  entries_[value] = quantized;
  return quantized;
}

void StaticRewriter::set_quantized(Value* fp32_value, Value* quantized_value,
                                   const std::vector<Node*>& superseded) {
  quantized_[fp32_value] = quantized_value;
  order_.push_back(fp32_value);
  for (Node* node : superseded) superseded_.insert(node);
}

bool StaticRewriter::carry_through(Node* node) {
  if (superseded_.count(node) || !passes_quantized_through(node)) return false;
  auto twin = quantized_.find(node->input(0));
  if (twin == quantized_.end()) return false;
  Value* quantized = twin->second;
  Node* clone = graph_.createClone(node, [&](Value* v) { return v == node->input(0) ? quantized : v; });
  clone->insertBefore(node);
  set_quantized(node->output(), clone->output(), {node});
  return true;
}

bool StaticRewriter::superseded(const Node* node) const {
  return superseded_.count(node) > 0;
}

void StaticRewriter::finish(std::int64_t& quantize_nodes, std::int64_t& dequantize_nodes) {
  static const std::unordered_set<std::string> kShapeReaders = {"aten::size", "aten::dim", "aten::len"};
  for (Value* value : order_) {
    Value* quantized = quantized_.at(value);
    std::vector<torch::jit::Use> fp32_uses;
    std::vector<torch::jit::Use> shape_uses;
    for (const torch::jit::Use& use : value->uses()) {
      if (superseded_.count(use.user)) continue;
      (kShapeReaders.count(use.user->kind().toQualString()) ? shape_uses : fp32_uses).push_back(use);
    }
    for (const torch::jit::Use& use : shape_uses) use.user->replaceInput(use.offset, quantized);
    if (fp32_uses.empty()) continue;
    torch::jit::WithInsertPoint after(quantized->node()->next());
    Value* dequantized = graph_.insert(c10::aten::dequantize, {quantized});
    for (const torch::jit::Use& use : fp32_uses) use.user->replaceInput(use.offset, dequantized);
  }
  torch::jit::EliminateDeadCode(graph_.block());
  quantize_nodes = 0;
  dequantize_nodes = 0;
  for (const Node* node : graph_.nodes()) {
    if (node->kind() == c10::aten::quantize_per_tensor) ++quantize_nodes;
    if (node->kind() == c10::aten::dequantize) ++dequantize_nodes;
  }
}

}  // namespace profagent::quantize

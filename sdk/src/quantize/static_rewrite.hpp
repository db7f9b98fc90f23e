#pragma once
// The edits of the static int8 rewrite (static_rewrite.cpp): weights attached at a layer's path,
// entries into quantized regions, and the exits fp32 readers need. Private to profagent_quantize.
#include <unordered_map>
#include <unordered_set>

#include "static_internal.hpp"

namespace profagent::quantize {

class StaticRewriter {
 public:
  StaticRewriter(torch::jit::Module& root, Graph& graph);

  // `value` as an attribute of the module at `path` (holder modules created on the way; "" is the root),
  // read through a prim::GetAttr chain inserted at the graph's insertion point.
  Result<Value*> attach(const std::string& path, const std::string& name, const c10::IValue& value,
                        bool parameter);
  Result<Value*> attach_packed(const std::string& path, const c10::IValue& packed);
  // The quantized twin of `value`, or quantize_per_tensor(value) inserted here (once per value).
  Value* quantized_input(Value* value, const QuantParams& params, bool channels_last);
  // `quantized_value` now stands for `fp32_value`; `superseded` are the fp32 nodes it replaces.
  void set_quantized(Value* fp32_value, Value* quantized_value, const std::vector<Node*>& superseded);
  // Pooling, flatten, ReLU... whose input has a quantized twin run on it directly (a clone of the node
  // before it); false when `node` is not such an op.
  bool carry_through(Node* node);
  bool superseded(const Node* node) const;
  // Dequantizes each quantized value that an fp32 op (or the output) still reads, drops what is dead,
  // and counts the entries and exits left.
  void finish(std::int64_t& quantize_nodes, std::int64_t& dequantize_nodes);

 private:
  torch::jit::Module& root_;
  Graph& graph_;
  std::unordered_map<Value*, Value*> quantized_;  // fp32 value -> its quantized twin
  std::unordered_map<Value*, Value*> entries_;    // fp32 value -> quantize_per_tensor of it
  std::vector<Value*> order_;
  std::unordered_set<const Node*> superseded_;
};

}  // namespace profagent::quantize

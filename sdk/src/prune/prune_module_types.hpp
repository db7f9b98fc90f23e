#pragma once
// What lets a pruned model keep its module hierarchy (prune_module_types.cpp, docs/pruning.md
// "The pruned model"): a copy of the model in which every module instance has a class type of its
// own, so that the code and class constants of one instance can be edited without touching another
// that shared its type; the nodes of those per-instance methods tagged, so that a node of the inlined
// graph the analysis runs on leads back to the node of the method it came from; and that inlining.
// Private to profagent_prune.
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::torch_tk {

// "MultiheadAttention" for __torch__.torch.nn.modules.activation.___torch_mangle_7.MultiheadAttention.
inline std::string class_base_name(const c10::ClassTypePtr& type) {
  if (!type || !type->name()) return "";
  return type->name()->name();
}

// A deep copy of `module` whose every module instance has its own class type (same attributes,
// constants and methods, names mangled) with its own method graphs, free functions inlined into them.
// kUnsupported, naming the class, for what the copy cannot carry: forward hooks, properties, module
// interfaces, a module value that does not come from an attribute (the caller then analyses the
// shared types and outputs one inlined forward).
Result<torch::jit::Module> copy_with_own_types(const torch::jit::Module& module);

// Tags every node (not constants) of every method of every instance of `module` with its index in
// the returned list, carried by the clones inlining makes; origin_of() reads it back.
std::vector<torch::jit::Node*> tag_method_nodes(const torch::jit::Module& module);
// The tagged method node `node` is a clone of, or nullptr (a node made by a pass, or untagged).
torch::jit::Node* origin_of(const torch::jit::Node* node, const std::vector<torch::jit::Node*>& origins);
void remove_tags(const std::vector<torch::jit::Node*>& origins);

// The forward of `module` with every method call inlined, innermost first (call stacks name every
// module on the way), each callee simplified the way TorchScript simplifies a graph it inlines.
std::shared_ptr<torch::jit::Graph> inline_forward(const torch::jit::Module& module);

}  // namespace profagent::torch_tk

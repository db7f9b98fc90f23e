#pragma once
// What the pruning engine asks of a TorchScript graph and module: tensor types, metadata ops, the
// tensors of a list, module paths of prim::GetAttr chains, submodules by path (prune_ir.cpp).
// Private to profagent_prune.
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <optional>
#include <string>
#include <vector>

namespace profagent::torch_tk {

bool is_tensor_type(const torch::jit::Value* value);
// Tensor or Optional[Tensor] (scripted code passes `self.running_mean if ... else None`).
bool is_tensor_like(const torch::jit::Value* value);
// Ops that read only a tensor's metadata (sizes, dtype, device): they need no mapping and a
// dynamic size adapts by itself to a pruned tensor.
bool is_metadata_op(const std::string& op);
// Whether a view / reshape sizes a tensor only with ints that follow pruned widths by themselves:
// each element -1, or computed at run time from tensor sizes and int module attributes (which the
// edits keep true), constants entering only through arithmetic. Code that did not run for the example
// input and reshapes that way (Swin's shifted-window mask: view(B/nW, nW, num_heads, N, N)) needs no
// freeze of what it reads.
bool sizes_follow_pruning(const torch::jit::Node* reshape);
// The elements of a list or tuple value built in the graph (nested), else the value itself; only
// tensors (and optional tensors) are appended to `out`.
void flatten_tensors(const torch::jit::Value* value, std::vector<const torch::jit::Value*>& out, int depth = 0);
// The module path of a module value reached by prim::GetAttr from `self` (the graph's input 0);
// nullopt when the chain has another node.
std::optional<std::string> module_path_of(const torch::jit::Value* value, const torch::jit::Value* self);
// The submodule at a dotted path ("layer1.0"; "" is the root); nullopt when a name on the way holds
// no object.
std::optional<torch::jit::Module> find_submodule(const torch::jit::Module& root, const std::string& path);
// The same for a path known to name a submodule: throws std::runtime_error when it does not.
torch::jit::Module submodule(const torch::jit::Module& root, const std::string& path);

}  // namespace profagent::torch_tk

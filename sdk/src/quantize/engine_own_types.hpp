#pragma once
// A copy of a model in which every module instance has a class type of its own, so that quantizing
// one layer edits that instance's code and attributes alone (TorchScript shares one type between
// instances built the same way, e.g. all twelve encoder blocks of a ViT). Private to profagent_quantize.
//
// The same idea as the pruning engine's per-instance copy (sdk/src/prune/prune_module_types.cpp),
// which is private to profagent_prune; this one can also leave a method out (the attention forward
// that engine_attention replaces) and keeps the instances' paths.
#include <torch/script.h>

#include <functional>
#include <map>
#include <string>

#include "profagent/status.hpp"

namespace profagent::torch_tk {

struct OwnTypedModule {
  torch::jit::Module module;
  // every instance by module path ("" for the root), and the path of each instance's type
  std::map<std::string, torch::jit::Module> instances;
  std::map<const c10::ClassType*, std::string> path_of_type;
};

// `skip_method(path, method)`: true leaves that method out of the instance's new type (the caller
// defines a replacement). Free functions are inlined into every method. kUnsupported for forward
// hooks, properties and module interfaces, naming the class.
Result<OwnTypedModule> copy_with_instance_types(
    const torch::jit::Module& module, const std::function<bool(const std::string&, const std::string&)>& skip_method);

}  // namespace profagent::torch_tk

#pragma once
// Reading constant arguments of a TorchScript IR node (prim::Constant, or a prim::ListConstruct of
// constants), shared by the static profile's OpView and the pruning graph's RuleContext. Private to
// the SDK's sources.
#include <torch/script.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace profagent::torch_tk::ir {

inline std::optional<std::int64_t> constant_int(const torch::jit::Value* value) {
  auto constant = torch::jit::toIValue(value);
  if (!constant || !constant->isInt()) return std::nullopt;
  return constant->toInt();
}

// An int[] argument; a single int counts as a one-element list (`kernel_size=3`).
inline std::optional<std::vector<std::int64_t>> constant_int_list(const torch::jit::Value* value) {
  if (value->node()->kind() == c10::prim::ListConstruct) {
    std::vector<std::int64_t> ints;
    for (const torch::jit::Value* element : value->node()->inputs()) {
      auto element_int = constant_int(element);
      if (!element_int) return std::nullopt;
      ints.push_back(*element_int);
    }
    return ints;
  }
  auto constant = torch::jit::toIValue(value);
  if (!constant) return std::nullopt;
  if (constant->isIntList()) return constant->toIntVector();
  if (constant->isInt()) return std::vector<std::int64_t>{constant->toInt()};
  return std::nullopt;
}

inline std::optional<bool> constant_bool(const torch::jit::Value* value) {
  auto constant = torch::jit::toIValue(value);
  if (!constant || !constant->isBool()) return std::nullopt;
  return constant->toBool();
}

inline std::optional<std::string> constant_string(const torch::jit::Value* value) {
  auto constant = torch::jit::toIValue(value);
  if (!constant || !constant->isString()) return std::nullopt;
  return constant->toStringRef();
}

}  // namespace profagent::torch_tk::ir

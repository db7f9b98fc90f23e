// Unpacking quantized ops' packed parameters through their own unpack ops (the packed types' C++
// classes are not in LibTorch's installed headers, their ops are in the dispatcher).
#include "profagent/profile/packed_weights.hpp"

#include <ATen/core/dispatch/Dispatcher.h>

#include <unordered_set>

namespace profagent::torch_tk {

namespace {

// The unpack ops of a packed type, tried in order (an fp16 linear needs its own).
std::vector<const char*> packed_unpack_ops(const std::string& type_name) {
  if (type_name.find("Conv2dPackedParamsBase") != std::string::npos) return {"quantized::conv2d_unpack"};
  if (type_name.find("Conv3dPackedParamsBase") != std::string::npos) return {"quantized::conv3d_unpack"};
  if (type_name.find("LinearPackedParamsBase") != std::string::npos)
    return {"quantized::linear_unpack", "quantized::linear_unpack_fp16"};
  return {};
}

std::string packed_type_name(const c10::IValue& value) {
  if (!value.isObject()) return "";
  auto name = value.toObjectRef().type()->name();
  return name ? name->qualifiedName() : "";
}

}  // namespace

std::int64_t PackedWeights::elements() const {
  return weight.numel() + (bias ? bias->numel() : 0);
}

std::int64_t PackedWeights::bytes() const {
  std::int64_t total = weight.numel() * static_cast<std::int64_t>(weight.element_size());
  if (bias) total += bias->numel() * static_cast<std::int64_t>(bias->element_size());
  return total;
}

bool is_packed_params(const c10::IValue& value) {
  return !packed_unpack_ops(packed_type_name(value)).empty();
}

std::optional<PackedWeights> unpack_packed_params(const c10::IValue& value) {
  for (const char* op : packed_unpack_ops(packed_type_name(value))) {
    auto handle = c10::Dispatcher::singleton().findSchema({op, ""});
    if (!handle) continue;
    std::vector<c10::IValue> stack{value};
    try {
      handle->callBoxed(stack);
    } catch (const std::exception&) {
      continue;  // e.g. linear_unpack on fp16 weights: the next op may know them
    }
    if (stack.size() != 2 || !stack[0].isTensor()) continue;
    PackedWeights weights;
    weights.weight = stack[0].toTensor();
    if (stack[1].isTensor()) weights.bias = stack[1].toTensor();
    return weights;
  }
  return std::nullopt;
}

std::map<std::string, PackedWeightTotals> packed_weights_by_module(const torch::jit::Module& module) {
  std::map<std::string, PackedWeightTotals> totals;
  std::unordered_set<const c10::ivalue::Object*> seen;  // an object shared by two modules counts once
  for (const auto& entry : module.named_modules()) {
    const auto& object = entry.value._ivalue();
    for (std::size_t i = 0; i < object->type()->numAttributes(); ++i) {
      const c10::IValue& slot = object->getSlot(i);
      if (!is_packed_params(slot) || !seen.insert(&slot.toObjectRef()).second) continue;
      auto weights = unpack_packed_params(slot);
      if (!weights) continue;
      PackedWeightTotals& own = totals[entry.name];
      own.objects += 1;
      own.elements += weights->elements();
      own.bytes += weights->bytes();
    }
  }
  return totals;
}

PackedWeightTotals packed_weight_totals(const torch::jit::Module& module) {
  PackedWeightTotals sum;
  for (const auto& [path, own] : packed_weights_by_module(module)) {
    sum.objects += own.objects;
    sum.elements += own.elements;
    sum.bytes += own.bytes;
  }
  return sum;
}

std::string param_counting_text(std::int64_t packed_objects) {
  return packed_objects == 0 ? "parameters"
                             : "parameters + packed weights (quantized ops' unpacked weight and bias "
                               "elements; int8 1 byte, fp32 4)";
}

}  // namespace profagent::torch_tk

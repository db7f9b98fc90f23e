#pragma once
// The weights inside quantized ops' packed parameters (quantized::conv2d_prepack, linear_prepack, and
// the dynamic/fp16 linear forms): what a profile counts for a quantized model's `params`, its
// `param_bytes` and, through the weight's shape, its MACs; the evaluation's `params` count them too.
#include <torch/script.h>

#include <map>
#include <optional>
#include <string>

namespace profagent::torch_tk {

struct PackedWeights {
  at::Tensor weight;               // as unpacked: int8 (qint8) or fp16, [out, in/groups, k...] or [out, in]
  c10::optional<at::Tensor> bias;  // fp32
  std::int64_t elements() const;   // weight + bias elements
  std::int64_t bytes() const;      // weight + bias at their element sizes (int8: 1 byte)
};

// True for a custom-class object of one of LibTorch's packed-parameter types.
bool is_packed_params(const c10::IValue& value);
// The weights of a packed-parameter object (the engine's own unpack op), or nullopt when it is none
// or its engine cannot unpack it.
std::optional<PackedWeights> unpack_packed_params(const c10::IValue& value);

struct PackedWeightTotals {
  std::int64_t objects = 0;  // packed-parameter attributes found (each object once)
  std::int64_t elements = 0;
  std::int64_t bytes = 0;
};
// Every packed-parameter attribute of `module` and its submodules, by owning module path ("" the root).
std::map<std::string, PackedWeightTotals> packed_weights_by_module(const torch::jit::Module& module);
PackedWeightTotals packed_weight_totals(const torch::jit::Module& module);
// How params were counted, for a `param_counting` field: "parameters", or "parameters + packed
// weights (...)" when `packed_objects` > 0.
std::string param_counting_text(std::int64_t packed_objects);

}  // namespace profagent::torch_tk

// int8 weights per output channel, and the engine's packed form of them.
#include <ATen/core/dispatch/Dispatcher.h>

#include "profagent/torch/errors.hpp"
#include "static_internal.hpp"

namespace profagent::quantize {

at::Tensor quantize_weight_per_channel(const at::Tensor& weight) {
  at::Tensor w = weight.detach().to(at::kFloat).contiguous();
  const std::int64_t channels = w.size(0);
  // Symmetric over ±127: oneDNN and QNNPACK both want zero point 0, and -128 is left out so that the
  // range is the same on both sides.
  at::Tensor max_abs = w.reshape({channels, -1}).abs().amax(1).to(at::kDouble);
  at::Tensor scales = (max_abs / 127.0).clamp_min(1e-12);
  at::Tensor zero_points = at::zeros({channels}, at::kLong);
  return at::quantize_per_channel(w, scales, zero_points, 0, at::kQInt8);
}

Result<std::vector<c10::IValue>> call_operator(const std::string& name, const std::string& overload,
                                               std::vector<c10::IValue> stack, const std::string& where) {
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle)
    return Status(ErrorCode::kUnsupported, where + ": this LibTorch has no operator " + name +
                                               (overload.empty() ? "" : "." + overload));
  try {
    handle->callBoxed(stack);
  } catch (const std::exception& error) {
    return Status(ErrorCode::kUnsupported, where + ": " + name + " failed with the quantized engine '" +
                                               c10::toString(at::globalContext().qEngine()) +
                                               "': " + torch_tk::torch_error_reason(error));
  }
  return stack;
}

Result<c10::IValue> prepack_conv2d(const at::Tensor& qweight, const std::optional<at::Tensor>& bias,
                                   const std::vector<std::int64_t>& stride,
                                   const std::vector<std::int64_t>& padding,
                                   const std::vector<std::int64_t>& dilation, std::int64_t groups,
                                   const std::string& where) {
  PROFAGENT_ASSIGN_OR_RETURN(auto out, call_operator("quantized::conv2d_prepack", "",
                                                     {qweight, bias ? c10::IValue(*bias) : c10::IValue(),
                                                      stride, padding, dilation, groups},
                                                     where));
  return out.at(0);
}

Result<c10::IValue> prepack_linear(const at::Tensor& qweight, const std::optional<at::Tensor>& bias,
                                   const std::string& where) {
  PROFAGENT_ASSIGN_OR_RETURN(auto out,
                             call_operator("quantized::linear_prepack", "",
                                           {qweight, bias ? c10::IValue(*bias) : c10::IValue()}, where));
  return out.at(0);
}

std::int64_t packed_bytes(const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  // A per-channel qint8 tensor is saved with its int8 data, an fp64 scale and an int64 zero point per
  // channel.
  std::int64_t bytes = weight.numel() + weight.size(0) * (8 + 8);
  if (bias) bytes += bias->numel() * static_cast<std::int64_t>(bias->element_size());
  return bytes;
}

}  // namespace profagent::quantize

// Per-scheme weights of one linear layer and the TorchScript method computing it (linear_internal.hpp).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>

#include <stdexcept>

#include "linear_internal.hpp"

namespace profagent::quantize::detail {

namespace {

// ScalarType codes as TorchScript source spells dtypes (torch.float32 etc. need Python's resolver).
constexpr int kHalfCode = 5;
constexpr int kFloatCode = 6;
constexpr int kBFloat16Code = 15;

struct QuantizeSourceResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

std::int64_t kernel_tensor_bytes(const at::Tensor& tensor) {
  return static_cast<std::int64_t>(tensor.numel()) * static_cast<std::int64_t>(tensor.element_size());
}

// Per-output-channel symmetric int8: scale = max|w| / 127 per row, zero point 0.
at::Tensor quantize_rows_int8(const at::Tensor& weight) {
  at::Tensor scales = weight.abs().amax({1}).clamp_min(1e-12).div(127.0).to(at::kDouble);
  at::Tensor zero_points = at::zeros({weight.size(0)}, at::kLong);
  return at::quantize_per_channel(weight, scales, zero_points, 0, at::kQInt8);
}

std::int64_t kernel_int8_bytes(const at::Tensor& qweight) {
  // int8 values + the per-channel double scale and int64 zero point serialization stores
  return qweight.numel() + 16 * qweight.size(0);
}

c10::IValue prepack_linear(const at::Tensor& qweight, const c10::optional<at::Tensor>& bias) {
  static const c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  torch::jit::Stack stack{qweight, bias ? c10::IValue(*bias) : c10::IValue()};
  op.callBoxed(&stack);
  return stack.at(0);
}

double kernel_relative_error(const at::Tensor& approx, const at::Tensor& exact) {
  const double norm = exact.norm().item<double>();
  return norm > 0 ? (approx.to(at::kFloat) - exact).norm().item<double>() / norm : 0.0;
}

std::string kernel_unique_name(const torch::jit::Module& owner, const std::string& base) {
  std::string name = base;
  for (int i = 1; owner.type()->hasAttribute(name) || owner.type()->findMethod(name); ++i)
    name = base + "_" + std::to_string(i);
  return name;
}

}  // namespace

void define_methods(torch::jit::Module& module, const std::string& source) {
  module.define(source, std::make_shared<QuantizeSourceResolver>());
}

KernelMade make_linear_kernel(torch::jit::Module& owner, const std::string& weight, bool stored_transposed,
                              const std::string& bias, bool bias_argument, Scheme scheme) {
  KernelMade made;
  at::Tensor w = owner.attr(weight).toTensor().detach();
  if (stored_transposed) w = w.t();
  w = w.contiguous().to(at::kFloat);
  if (w.dim() != 2) throw std::runtime_error("weight '" + weight + "' is not 2-D");
  c10::optional<at::Tensor> b;
  if (!bias.empty()) b = owner.attr(bias).toTensor().detach().contiguous().to(at::kFloat);
  made.bytes_before = kernel_tensor_bytes(w) + (b ? kernel_tensor_bytes(*b) : 0);
  const std::int64_t out_features = w.size(0);

  const std::string base = "_profagent_" + scheme_name(scheme) + "_" + weight + (stored_transposed ? "_t" : "");
  made.method = kernel_unique_name(owner, base + (bias_argument ? "_b" : ""));
  const std::string signature = "def " + made.method + "(self, x: Tensor" +
                                (bias_argument ? ", bias: Optional[Tensor]" : "") + ") -> Tensor:\n";
  const std::string bias_expr = bias_argument ? "bias" : (bias.empty() ? "None" : "self." + bias);
  std::string body;
  switch (scheme) {
    case Scheme::kNone: {
      body = "    return torch.linear(x, self." + weight + (stored_transposed ? ".t()" : "") + ", " + bias_expr + ")\n";
      made.bytes_after = made.bytes_before;
      break;
    }
    case Scheme::kInt8Dynamic: {
      at::Tensor q = quantize_rows_int8(w);
      made.weight_rel_error = kernel_relative_error(q.dequantize(), w);
      const std::string packed = kernel_unique_name(owner, weight + "_int8_packed");
      c10::IValue params = prepack_linear(q, b);
      owner.register_attribute(packed, params.type(), params);
      made.bytes_after = kernel_int8_bytes(q) + (b ? kernel_tensor_bytes(*b) : 0);
      // linear_dynamic flattens to 2-D itself on some engines only: done here for every one.
      body = "    shape = x.size()[:-1]\n    shape.append(" + std::to_string(out_features) +
             ")\n    y = quantized.linear_dynamic(x.reshape(-1, x.size(-1)), self." + packed +
             ", False).reshape(shape)\n";
      body += bias_argument ? "    if bias is not None:\n        y = y + bias\n    return y\n" : "    return y\n";
      break;
    }
    case Scheme::kInt8WeightOnly: {
      at::Tensor q = quantize_rows_int8(w);
      made.weight_rel_error = kernel_relative_error(q.dequantize(), w);
      const std::string stored = kernel_unique_name(owner, weight + "_int8");
      owner.register_buffer(stored, q);
      made.bytes_after = kernel_int8_bytes(q) + (b ? kernel_tensor_bytes(*b) : 0);
      body = "    return torch.linear(x, self." + stored + ".dequantize(), " + bias_expr + ")\n";
      break;
    }
    case Scheme::kFp16: {
      at::Tensor h = w.to(at::kHalf);
      made.weight_rel_error = kernel_relative_error(h, w);
      const std::string stored = kernel_unique_name(owner, weight + "_fp16");
      owner.register_buffer(stored, h);
      made.bytes_after = kernel_tensor_bytes(h) + (b ? kernel_tensor_bytes(*b) : 0);
      body = "    return torch.linear(x, self." + stored + ".to(" + std::to_string(kFloatCode) + "), " + bias_expr +
             ")\n";
      (void)kHalfCode;
      break;
    }
    case Scheme::kBf16: {
      at::Tensor h = w.to(at::kBFloat16);
      made.weight_rel_error = kernel_relative_error(h, w);
      const std::string stored = kernel_unique_name(owner, weight + "_bf16");
      owner.register_buffer(stored, h);
      made.bytes_after = kernel_tensor_bytes(h);
      std::string bf16_bias = "None";
      if (bias_argument) {
        bf16_bias = "bias16";
        body = "    bias16: Optional[Tensor] = None\n    if bias is not None:\n        bias16 = bias.to(" +
               std::to_string(kBFloat16Code) + ")\n";
      } else if (b) {
        bf16_bias = "self." + kernel_unique_name(owner, bias + "_bf16");
        owner.register_buffer(bf16_bias.substr(5), b->to(at::kBFloat16));
        made.bytes_after += b->numel() * 2;
      }
      body += "    return torch.linear(x.to(" + std::to_string(kBFloat16Code) + "), self." + stored + ", " + bf16_bias +
              ").to(" + std::to_string(kFloatCode) + ")\n";
      break;
    }
    case Scheme::kInt8Static:
      throw std::runtime_error("int8_static: needs the static int8 engine (issue 11 item 3)");
  }
  define_methods(owner, signature + body);
  return made;
}

}  // namespace profagent::quantize::detail

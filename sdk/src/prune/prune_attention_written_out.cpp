// nn.MultiheadAttention written out in the working copy (prune_attention_written_out.hpp).
//
// Why: the fused kernel aten::_native_multi_head_attention (and F.multi_head_attention_forward, its
// slow path) require in_proj_weight [3E, E] with E the input width, so a head can only be removed
// together with its share of the residual stream. Written out as q/k/v from one linear, a split into
// heads, two matmuls and the out-projection, the internal width H·D is free: the head-split rule
// (prune_rules_attention.cpp) removes whole heads and the residual width stays. The source is
// specialised to what every call site passes (self-attention, no masks, need_weights a constant), so
// it has no branch that the example input would not run (the analysis freezes what such branches
// read); a later caller passing anything else gets a clear error instead of a wrong result.
#include "prune_attention_written_out.hpp"

#include <optional>
#include <string>

#include "prune_module_types.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// How the instance is called, the same at every call site.
struct AttentionCalls {
  bool traced = false;      // forward(self, x) -> Tensor, the fused kernel traced
  bool need_weights = false;
  bool average_weights = true;
};

std::optional<bool> constant_bool(const Value* value) {
  if (value->node()->kind() != c10::prim::Constant) return std::nullopt;
  auto ivalue = torch::jit::toIValue(value);
  if (!ivalue || !ivalue->isBool()) return std::nullopt;
  return ivalue->toBool();
}

bool is_none(const Value* value) { return value->type()->kind() == c10::TypeKind::NoneType; }

// Every CallMethod of `type`'s forward in the methods of `root`'s instances (types are per instance,
// so a call on `type` is a call on this instance).
std::vector<const Node*> call_sites(const torch::jit::Module& root, const c10::ClassType* type) {
  std::vector<const Node*> calls;
  for (const torch::jit::Module& instance : root.modules()) {
    for (torch::jit::Function* method : instance.type()->methods()) {
      for (Node* node : torch::jit::findAllNodes(*torch::jit::toGraphFunction(*method).graph(),
                                                 c10::prim::CallMethod, /*recurse=*/true)) {
        if (node->s(torch::jit::attr::name) == "forward" && node->input(0)->type().get() == type) calls.push_back(node);
      }
    }
  }
  return calls;
}

bool forward_runs_fused_kernel(const torch::jit::Module& attention) {
  auto graph = attention.get_method("forward").graph();
  return !torch::jit::findAllNodes(*graph, c10::Symbol::fromQualString("aten::_native_multi_head_attention"),
                                   /*recurse=*/true)
              .empty();
}

// The fused kernel's num_heads argument, when the traced forward passes a constant.
std::optional<std::int64_t> traced_num_heads(const torch::jit::Module& attention) {
  auto graph = attention.get_method("forward").graph();
  for (Node* node : torch::jit::findAllNodes(*graph, c10::Symbol::fromQualString("aten::_native_multi_head_attention"),
                                             /*recurse=*/true)) {
    if (auto heads = torch::jit::constant_as<std::int64_t>(node->input(4))) return *heads;
  }
  return std::nullopt;
}

// Why the instance cannot be written out, or nullopt; `calls` says how it is called.
std::optional<std::string> check_instance(const torch::jit::Module& root, const torch::jit::Module& attention,
                                          AttentionCalls& calls) {
  if (!attention.hasattr("in_proj_weight") || !attention.attr("in_proj_weight").isTensor()) {
    return "q, k and v have projections of their own (kdim / vdim differ from embed_dim)";
  }
  if (!attention.hasattr("in_proj_bias") || !attention.attr("in_proj_bias").isTensor()) return "no in_proj_bias";
  if (attention.hasattr("bias_k") && !attention.attr("bias_k").isNone()) return "it has bias_k / bias_v";
  if (attention.hasattr("add_zero_attn") && attention.attr("add_zero_attn").toBool()) return "add_zero_attn is set";
  if (!forward_runs_fused_kernel(attention)) return "its forward does not run the fused kernel";
  const c10::FunctionSchema& schema = attention.get_method("forward").function().getSchema();
  calls.traced = !attention.hasattr("num_heads");
  if (calls.traced) {
    if (schema.arguments().size() != 2 || schema.returns().size() != 1 ||
        schema.returns()[0].type()->kind() != c10::TypeKind::TensorType) {
      return "its traced forward is not forward(self, x) -> Tensor";
    }
  } else if (schema.arguments().size() != 8 || !attention.hasattr("batch_first") || !attention.hasattr("head_dim")) {
    return "its forward is not nn.MultiheadAttention's";
  } else if (!attention.attr("batch_first").toBool()) {
    return "batch_first is False";  // the fused kernel's condition too; kept for a clear reason
  }
  const auto sites = call_sites(root, attention.type().get());
  if (sites.empty()) return "no call of its forward was found";
  std::optional<bool> need_weights;
  std::optional<bool> average_weights;
  for (const Node* call : sites) {
    if (calls.traced) continue;  // one tensor argument: self-attention by construction
    if (call->inputs().size() != 8) return "a call passes " + std::to_string(call->inputs().size() - 1) + " arguments";
    if (call->input(2) != call->input(1) || call->input(3) != call->input(1)) return "a call is not self-attention";
    if (!is_none(call->input(4)) || !is_none(call->input(6))) return "a call passes a mask";
    auto weights = constant_bool(call->input(5));
    auto average = constant_bool(call->input(7));
    if (!weights || !average) return "a call's need_weights / average_attn_weights is not a constant";
    if ((need_weights && *need_weights != *weights) || (average_weights && *average_weights != *average)) {
      return "calls differ in need_weights / average_attn_weights";
    }
    need_weights = weights;
    average_weights = average;
  }
  calls.need_weights = need_weights.value_or(false);
  calls.average_weights = average_weights.value_or(true);
  return std::nullopt;
}

// The head split is the one the head-split rule maps (linear → reshape(B, T, 3, heads, head_dim)),
// with num_heads and head_dim as attributes of their own, so heads prune and head_dim stays.
std::string written_out_source(const AttentionCalls& calls, double dropout) {
  std::string signature;
  std::string check;
  std::string result;
  if (calls.traced) {
    signature = "def forward(self, query: Tensor) -> Tensor:\n";
    result = "    return y\n";
  } else {
    signature =
        "def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor]=None,\n"
        "            need_weights: bool=" + std::string(calls.need_weights ? "True" : "False") +
        ", attn_mask: Optional[Tensor]=None,\n"
        "            average_attn_weights: bool=" + std::string(calls.average_weights ? "True" : "False") +
        ") -> Tuple[Tensor, Optional[Tensor]]:\n";
    // `assert` (TorchScript's own AssertionError): names like RuntimeError do not resolve here.
    check = "    assert bool(key is query) and bool(value is query) and key_padding_mask is None and attn_mask is None"
            " and need_weights == " + std::string(calls.need_weights ? "True" : "False") +
            " and average_attn_weights == " + std::string(calls.average_weights ? "True" : "False") +
            ", \"this MultiheadAttention was written out by profagent's pruning for self-attention without "
            "masks; call it as the model does\"\n";
    if (!calls.need_weights) {
      result = "    return y, None\n";
    } else if (calls.average_weights) {
      result = "    return y, attn.mean(1)\n";
    } else {
      result = "    return y, attn\n";
    }
  }
  std::string body =
      "    B = query.size(0)\n"
      "    T = query.size(1)\n"
      "    qkv = torch.linear(query, self.in_proj_weight, self.in_proj_bias)\n"
      "    qkv = qkv.reshape(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)\n"
      "    q = qkv[0] * (float(self.head_dim) ** -0.5)\n"
      "    attn = torch.softmax(torch.matmul(q, qkv[1].transpose(-2, -1)), -1)\n";
  if (dropout > 0) body += "    attn = torch.dropout(attn, self.dropout, self.training)\n";
  body +=
      "    y = torch.matmul(attn, qkv[2]).transpose(1, 2).reshape(B, T, -1)\n"
      "    y = torch.linear(y, self.out_proj.weight, self.out_proj.bias)\n";
  return signature + check + body + result;
}

void replace_forward(torch::jit::Module& attention, const std::string& source) {
  const c10::ClassTypePtr type = attention.type();
  type->unsafeRemoveMethod("forward");
  type->compilation_unit()->unsafeRemoveMethod(c10::QualifiedName(*type->name(), "forward"));
  attention.define(source);
}

}  // namespace

std::vector<std::string> write_out_self_attention(torch::jit::Module& working_copy, std::vector<std::string>& warnings) {
  std::vector<std::string> written;
  for (const torch::jit::NameModule& named : working_copy.named_modules()) {
    torch::jit::Module attention = named.value;
    if (class_base_name(attention.type()) != "MultiheadAttention" || !attention.find_method("forward")) continue;
    const std::string path = named.name.empty() ? "(root)" : named.name;
    AttentionCalls calls;
    if (auto reason = check_instance(working_copy, attention, calls)) {
      warnings.push_back(path + " (nn.MultiheadAttention) keeps the fused kernel: " + *reason +
                         "; its heads are pruned with the residual channels they read");
      continue;
    }
    const at::Tensor weight = attention.attr("in_proj_weight").toTensor();
    std::int64_t heads = 0;
    if (calls.traced) {
      heads = traced_num_heads(attention).value_or(0);
      const std::int64_t width = weight.size(1);
      if (heads <= 0 || width % heads != 0) {
        warnings.push_back(path + " (nn.MultiheadAttention) keeps the fused kernel: its traced num_heads is not a constant");
        continue;
      }
      attention.register_attribute("num_heads", c10::IntType::get(), heads);
      attention.register_attribute("head_dim", c10::IntType::get(), width / heads);
    }
    const double dropout = attention.hasattr("dropout") && attention.attr("dropout").isDouble()
                               ? attention.attr("dropout").toDouble() : 0.0;
    replace_forward(attention, written_out_source(calls, dropout));
    written.push_back(path);
  }
  return written;
}

}  // namespace profagent::torch_tk

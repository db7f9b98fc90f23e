// Finding the linear ops whose weight is a parameter, in every method of a per-instance model copy.
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include "linear_internal.hpp"

namespace profagent::quantize::detail {

namespace {

using torch::jit::Node;
using torch::jit::Value;

struct SiteParameterRead {
  Value* owner = nullptr;
  std::string name;
};

// `value` is prim::GetAttr[name](module) of a parameter of that module.
std::optional<SiteParameterRead> site_parameter_read(Value* value) {
  Node* node = value->node();
  if (node->kind() != c10::prim::GetAttr) return std::nullopt;
  auto type = node->input(0)->type()->cast<c10::ClassType>();
  if (!type || !type->is_module()) return std::nullopt;
  const std::string name = node->s(torch::jit::attr::name);
  auto slot = type->findAttributeSlot(name);
  if (!slot || !type->is_parameter(*slot)) return std::nullopt;
  return SiteParameterRead{node->input(0), name};
}

std::optional<std::int64_t> site_int_constant(Value* value) {
  auto constant = torch::jit::toIValue(value);
  if (!constant || !constant->isInt()) return std::nullopt;
  return constant->toInt();
}

// The right operand of x @ R: R = W.t() (W is [out, in]) or R = W itself ([in, out]).
std::optional<std::pair<SiteParameterRead, bool>> site_right_operand(Value* value) {
  Node* node = value->node();
  if (node->kind() == c10::aten::t ||
      (node->kind() == c10::aten::transpose && node->inputs().size() == 3 && [&] {
        auto a = site_int_constant(node->input(1)), b = site_int_constant(node->input(2));
        return a && b && ((*a == 0 && *b == 1) || (*a == 1 && *b == 0) || (*a == -1 && *b == -2) ||
                          (*a == -2 && *b == -1));
      }())) {
    if (auto read = site_parameter_read(node->input(0))) return std::make_pair(*read, false);
    return std::nullopt;
  }
  if (auto read = site_parameter_read(value)) return std::make_pair(*read, true);
  return std::nullopt;
}

bool site_is_none(Value* value) { return value->type()->kind() == c10::TypeKind::NoneType; }

void site_set_bias(LinearSite& site, Value* bias) {
  if (bias == nullptr || site_is_none(bias)) return;
  site.bias_input = bias;
  // The same owner by type (one type per instance in the copy), not by value: a function such as
  // Swin's shifted_window_attention gets qkv.weight and qkv.bias through two prim::GetAttr of `qkv`.
  // Told apart, the bias would be an argument and the layer's own forward (bias folded) a second
  // kernel: two int8 copies of one weight.
  if (auto read = site_parameter_read(bias); read && read->owner->type() == site.owner->type()) {
    site.bias = read->name;
    return;
  }
  site.bias_value = bias;
}

void site_scan_block(torch::jit::Block* block, const torch_tk::OwnTypedModule& typed, std::vector<LinearSite>& out) {
  for (Node* node : block->nodes()) {
    for (torch::jit::Block* inner : node->blocks()) site_scan_block(inner, typed, out);
    LinearSite site;
    site.node = node;
    Value* bias = nullptr;
    if (node->kind() == c10::aten::linear && node->inputs().size() == 3) {
      auto read = site_parameter_read(node->input(1));
      if (!read) continue;
      site.op = "linear";
      site.input = node->input(0);
      site.owner = read->owner;
      site.weight = read->name;
      bias = node->input(2);
    } else if ((node->kind() == c10::aten::matmul || node->kind() == c10::aten::mm) && node->inputs().size() == 2) {
      auto right = site_right_operand(node->input(1));
      if (!right) continue;
      site.op = node->kind() == c10::aten::mm ? "mm" : "matmul";
      site.input = node->input(0);
      site.owner = right->first.owner;
      site.weight = right->first.name;
      site.stored_transposed = right->second;
    } else if (node->kind() == c10::aten::addmm && node->inputs().size() == 5) {
      // addmm(b, x, Wᵀ, beta=1, alpha=1) only: other factors are no linear layer.
      auto beta = torch::jit::toIValue(node->input(3)), alpha = torch::jit::toIValue(node->input(4));
      auto is_one = [](const c10::optional<c10::IValue>& v) {
        return v && ((v->isInt() && v->toInt() == 1) || (v->isDouble() && v->toDouble() == 1.0));
      };
      if (!is_one(beta) || !is_one(alpha)) continue;
      auto right = site_right_operand(node->input(2));
      if (!right) continue;
      site.op = "addmm";
      site.input = node->input(1);
      site.owner = right->first.owner;
      site.weight = right->first.name;
      site.stored_transposed = right->second;
      bias = node->input(0);
    } else {
      continue;
    }
    auto type = site.owner->type()->cast<c10::ClassType>();
    auto path = typed.path_of_type.find(type.get());
    if (path == typed.path_of_type.end()) continue;
    site.owner_path = path->second;
    site_set_bias(site, bias);
    out.push_back(site);
  }
}

}  // namespace

std::vector<LinearSite> find_linear_sites(const torch_tk::OwnTypedModule& typed) {
  std::vector<LinearSite> sites;
  for (const auto& [path, instance] : typed.instances) {
    (void)path;
    for (torch::jit::Function* method : instance.type()->methods())
      site_scan_block(torch::jit::toGraphFunction(*method).graph()->block(), typed, sites);
  }
  return sites;
}

bool is_rewritable_attention(const torch::jit::Module& module) {
  const c10::ClassTypePtr& type = module.type();
  // Module::hasattr: attributes and constants alike (MHA's batch_first is in __constants__).
  for (const char* name : {"in_proj_weight", "in_proj_bias", "out_proj", "num_heads", "head_dim", "batch_first",
                           "_qkv_same_embed_dim", "bias_k", "bias_v", "add_zero_attn"})
    if (!module.hasattr(name)) return false;
  auto slot = type->findAttributeSlot("in_proj_weight");
  if (!slot || !type->is_parameter(*slot)) return false;
  const c10::IValue same = module.attr("_qkv_same_embed_dim"), zero = module.attr("add_zero_attn");
  if (!same.isBool() || !same.toBool() || !zero.isBool() || zero.toBool()) return false;
  if (!module.attr("bias_k").isNone() || !module.attr("bias_v").isNone()) return false;
  if (!module.attr("out_proj").isModule()) return false;
  return torch::jit::Module(module.attr("out_proj").toObject()).type()->hasAttribute("weight");
}

}  // namespace profagent::quantize::detail

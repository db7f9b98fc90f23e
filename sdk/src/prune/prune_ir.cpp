// What the pruning engine asks of a TorchScript graph and module (prune_ir.hpp).
#include "prune_ir.hpp"

#include <set>
#include <sstream>
#include <stdexcept>

namespace profagent::torch_tk {

using torch::jit::Node;
using torch::jit::Value;

bool is_tensor_type(const Value* value) {
  return value->type()->kind() == c10::TypeKind::TensorType;
}

bool is_tensor_like(const Value* value) {
  if (is_tensor_type(value)) return true;
  auto optional = value->type()->cast<c10::OptionalType>();
  return optional && optional->getElementType()->kind() == c10::TypeKind::TensorType;
}

bool is_metadata_op(const std::string& op) {
  static const std::set<std::string> kOps = {
      "aten::size",  "aten::dim",          "aten::len",   "aten::numel",        "prim::shape",
      "prim::device", "prim::dtype",       "prim::layout", "aten::is_floating_point", "prim::is_cuda",
      "aten::__is__", "aten::__isnot__",   "prim::requires_grad", "aten::is_complex", "prim::is_quantized",
      "aten::__getitem__", "aten::append", "prim::unchecked_cast", "aten::_assert", "aten::warn",
      "prim::RaiseException", "aten::get_device", "aten::stride",
      "prim::is_nested", "prim::is_mkldnn",  "prim::is_sparse", "prim::is_meta", "aten::is_grad_enabled"};
  return kOps.count(op) > 0;
}

namespace {

bool int_follows_pruning(const Value* value, bool element, int depth) {
  if (depth > 12) return false;
  const Node* producer = value->node();
  const std::string kind = producer->kind().toQualString();
  if (producer->kind() == c10::prim::Constant) {
    if (!element) return true;
    auto constant = torch::jit::toIValue(value);
    return constant && constant->isInt() && constant->toInt() == -1;
  }
  if (producer->kind() == c10::prim::GetAttr) return true;  // an int (or int[]) module attribute
  if (kind == "aten::size" || kind == "prim::shape" || kind == "aten::dim" || kind == "aten::len" || kind == "aten::numel") {
    return true;
  }
  static const std::set<std::string> kArithmetic = {
      "aten::Int", "prim::NumToTensor", "aten::mul", "aten::add", "aten::sub", "aten::floordiv", "aten::div",
      "aten::__getitem__", "aten::neg", "aten::remainder", "prim::min", "prim::max", "prim::ListUnpack",
      "prim::unchecked_cast"};
  if (!kArithmetic.count(kind)) return false;
  for (const Value* input : producer->inputs()) {
    if (!int_follows_pruning(input, false, depth + 1)) return false;
  }
  return true;
}

}  // namespace

bool sizes_follow_pruning(const Node* reshape) {
  const std::string kind = reshape->kind().toQualString();
  if ((kind != "aten::view" && kind != "aten::reshape") || reshape->inputs().size() != 2) return false;
  const Node* sizes = reshape->input(1)->node();
  if (sizes->kind() != c10::prim::ListConstruct) return false;
  for (const Value* element : sizes->inputs()) {
    if (!int_follows_pruning(element, true, 0)) return false;
  }
  return true;
}

void flatten_tensors(const Value* value, std::vector<const Value*>& out, int depth) {
  const Node* producer = value->node();
  const auto kind = producer->kind();
  if (depth < 8 && (kind == c10::prim::ListConstruct || kind == c10::prim::TupleConstruct)) {
    for (const Value* element : producer->inputs()) flatten_tensors(element, out, depth + 1);
    // Elements appended later (scripted DenseNet builds a list with aten::append).
    for (const torch::jit::Use& use : value->uses()) {
      if (use.user->kind() == c10::aten::append && use.offset == 0) flatten_tensors(use.user->input(1), out, depth + 1);
    }
    return;
  }
  if (is_tensor_like(value)) out.push_back(value);
}

std::optional<std::string> module_path_of(const Value* value, const Value* self) {
  std::vector<std::string> names;
  while (value != self) {
    if (value->node()->kind() != c10::prim::GetAttr) return std::nullopt;
    names.push_back(value->node()->s(torch::jit::attr::name));
    value = value->node()->input(0);
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : ".") + *it;
  return path;
}

std::optional<torch::jit::Module> find_submodule(const torch::jit::Module& root, const std::string& path) {
  torch::jit::Module module = root;
  if (path.empty()) return module;
  std::stringstream names(path);
  std::string name;
  while (std::getline(names, name, '.')) {
    c10::IValue child = module._ivalue()->getAttr(name);
    if (!child.isObject()) return std::nullopt;
    module = torch::jit::Module(child.toObject());
  }
  return module;
}

torch::jit::Module submodule(const torch::jit::Module& root, const std::string& path) {
  std::optional<torch::jit::Module> found = find_submodule(root, path);
  if (!found) throw std::runtime_error("'" + path + "' is not a submodule of the model");
  return *found;
}

}  // namespace profagent::torch_tk

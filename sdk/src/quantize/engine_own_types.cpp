// Per-instance module types for the quantizer (engine_own_types.hpp).
#include "engine_own_types.hpp"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <stdexcept>

#include "profagent/torch/errors.hpp"

namespace profagent::torch_tk {

namespace {

struct QuantizeTypesUnsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool quantize_is_module_type(const c10::TypePtr& type) {
  auto class_type = type->cast<c10::ClassType>();
  return class_type && class_type->is_module();
}

// Free functions (F.linear inside Swin's shifted_window_attention) become part of each method that
// calls them, so that a linear op is found next to the parameter it reads.
void quantize_inline_functions(torch::jit::Graph& graph) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (torch::jit::Node* call : torch::jit::findAllNodes(graph, c10::prim::CallFunction, /*recurse=*/true)) {
      torch::jit::GraphFunction* function = torch::jit::tryToGraphFunction(call);
      if (function == nullptr) continue;
      call->removeInput(0);
      torch::jit::inlineCallTo(call, function, function->optimized_graph().get());
      changed = true;
    }
  }
}

// A submodule read by prim::GetAttr gets the type its instance has now.
void quantize_retype(torch::jit::Block* block) {
  for (torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::GetAttr && quantize_is_module_type(node->input(0)->type())) {
      auto owner = node->input(0)->type()->expect<c10::ClassType>();
      if (c10::TypePtr attribute = owner->findAttribute(node->s(torch::jit::attr::name)))
        node->output()->setType(attribute);
    }
    for (torch::jit::Block* inner : node->blocks()) quantize_retype(inner);
  }
}

class InstanceTypeCopier {
 public:
  explicit InstanceTypeCopier(const std::function<bool(const std::string&, const std::string&)>& skip)
      : skip_(skip) {}

  torch::jit::Module copy(const torch::jit::Module& module, const std::string& path, OwnTypedModule& out) {
    const c10::ClassTypePtr old_type = module.type();
    const std::string class_name = old_type->name() ? old_type->name()->qualifiedName() : "a module";
    if (!old_type->getForwardHooks().empty() || !old_type->getForwardPreHooks().empty())
      throw QuantizeTypesUnsupported(class_name + " has forward hooks");
    if (!old_type->properties().empty()) throw QuantizeTypesUnsupported(class_name + " has properties");
    auto unit = old_type->compilation_unit();
    const std::size_t count = old_type->numAttributes();
    std::vector<c10::IValue> values(count);
    std::vector<c10::TypePtr> types(count);
    for (std::size_t i = 0; i < count; ++i) {
      values[i] = module._ivalue()->getSlot(i);
      types[i] = old_type->getAttribute(i);
      if (types[i]->kind() == c10::TypeKind::InterfaceType)
        throw QuantizeTypesUnsupported(class_name + "." + old_type->getAttributeName(i) + " is a module interface");
      if (quantize_is_module_type(types[i]) && values[i].isObject()) {
        const std::string child_path = (path.empty() ? "" : path + ".") + old_type->getAttributeName(i);
        torch::jit::Module child = copy(torch::jit::Module(values[i].toObject()), child_path, out);
        values[i] = child._ivalue();
        types[i] = child.type();
      }
    }
    auto type = c10::ClassType::create(unit->mangle(*old_type->name()), unit, /*is_module=*/true);
    for (std::size_t i = 0; i < count; ++i)
      type->addAttribute(old_type->getAttributeName(i), types[i], old_type->is_parameter(i), old_type->is_buffer(i));
    for (std::size_t i = 0; i < old_type->numConstants(); ++i)
      type->addConstant(old_type->getConstantName(i), old_type->getConstant(i));
    unit->register_type(type);
    auto object = c10::ivalue::Object::create(c10::StrongTypePtr(unit, type), count);
    for (std::size_t i = 0; i < count; ++i) object->setSlot(i, values[i]);
    for (torch::jit::Function* method : old_type->methods()) {
      if (skip_ && skip_(path, method->name())) continue;
      std::shared_ptr<torch::jit::Graph> graph = torch::jit::toGraphFunction(*method).graph()->copy();
      quantize_inline_functions(*graph);
      graph->inputs().at(0)->setType(type);
      quantize_retype(graph->block());
      type->addMethod(unit->create_function(c10::QualifiedName(*type->name(), method->name()), graph));
    }
    torch::jit::Module copied(object);
    out.instances.emplace(path, copied);
    out.path_of_type.emplace(type.get(), path);
    return copied;
  }

 private:
  const std::function<bool(const std::string&, const std::string&)>& skip_;
};

}  // namespace

Result<OwnTypedModule> copy_with_instance_types(
    const torch::jit::Module& module, const std::function<bool(const std::string&, const std::string&)>& skip_method) {
  try {
    OwnTypedModule out;
    InstanceTypeCopier copier(skip_method);
    out.module = copier.copy(module.deepcopy(), "", out);
    return out;
  } catch (const QuantizeTypesUnsupported& e) {
    return Status(ErrorCode::kUnsupported, e.what());
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "copying the module types failed: " + torch_error_reason(e));
  }
}

}  // namespace profagent::torch_tk

// Per-instance module types, tags that lead inlined nodes back to their method, and the inlining the
// analysis runs on (prune_module_types.hpp).
//
// Why per-instance types: TorchScript shares one class type (its methods and class constants) between
// instances built the same way, e.g. every BasicBlock of a layer. Pruning gives instances different
// widths, so the sizes baked into one instance's code (a traced reshape, a conv's `groups`) and its
// class constants (`out_channels`) must change for that instance alone.
#include "prune_module_types.hpp"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/peephole.h>

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "profagent/torch/errors.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::GraphFunction;
using torch::jit::Node;

const c10::Symbol kOriginTag = c10::Symbol::attr("profagent_origin");

struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool is_module_type(const c10::TypePtr& type) {
  auto class_type = type->cast<c10::ClassType>();
  return class_type && class_type->is_module();
}

// Free functions (F.relu, torchvision helpers) become part of each method that calls them, as
// TorchScript's own inliner does, so that every node the analysis sees belongs to one instance.
void inline_functions(Graph& graph) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (Node* call : torch::jit::findAllNodes(graph, c10::prim::CallFunction, /*recurse=*/true)) {
      GraphFunction* function = torch::jit::tryToGraphFunction(call);
      if (function == nullptr) continue;
      call->removeInput(0);
      torch::jit::inlineCallTo(call, function, function->optimized_graph().get());
      changed = true;
    }
  }
}

class TypeCopier {
 public:
  torch::jit::Module copy(const torch::jit::Module& module) {
    const c10::ClassTypePtr old_type = module.type();
    const std::string class_name = old_type->name() ? old_type->name()->qualifiedName() : "a module";
    if (!old_type->getForwardHooks().empty() || !old_type->getForwardPreHooks().empty()) {
      throw Unsupported(class_name + " has forward hooks");
    }
    if (!old_type->properties().empty()) throw Unsupported(class_name + " has properties");
    auto unit = old_type->compilation_unit();
    const std::size_t count = old_type->numAttributes();
    std::vector<c10::IValue> values(count);
    std::vector<c10::TypePtr> types(count);
    for (std::size_t i = 0; i < count; ++i) {
      values[i] = module._ivalue()->getSlot(i);
      types[i] = old_type->getAttribute(i);
      if (types[i]->kind() == c10::TypeKind::InterfaceType) {
        throw Unsupported(class_name + "." + old_type->getAttributeName(i) + " is a module interface");
      }
      if (is_module_type(types[i]) && values[i].isObject()) {
        torch::jit::Module child = copy(torch::jit::Module(values[i].toObject()));
        values[i] = child._ivalue();
        types[i] = child.type();
      }
    }
    auto type = c10::ClassType::create(unit->mangle(*old_type->name()), unit, /*is_module=*/true);
    for (std::size_t i = 0; i < count; ++i) {
      type->addAttribute(old_type->getAttributeName(i), types[i], old_type->is_parameter(i), old_type->is_buffer(i));
    }
    for (std::size_t i = 0; i < old_type->numConstants(); ++i) {
      type->addConstant(old_type->getConstantName(i), old_type->getConstant(i));
    }
    unit->register_type(type);
    created_.insert(type.get());
    auto object = c10::ivalue::Object::create(c10::StrongTypePtr(unit, type), count);
    for (std::size_t i = 0; i < count; ++i) object->setSlot(i, values[i]);
    for (torch::jit::Function* method : old_type->methods()) {
      std::shared_ptr<Graph> graph = torch::jit::toGraphFunction(*method).graph()->copy();
      inline_functions(*graph);
      graph->inputs().at(0)->setType(type);
      retype(graph->block(), class_name + "." + method->name());
      type->addMethod(unit->create_function(c10::QualifiedName(*type->name(), method->name()), graph));
    }
    return torch::jit::Module(object);
  }

 private:
  // A submodule read by prim::GetAttr now has its instance's own type; any other module value would
  // still have the shared one.
  void retype(Block* block, const std::string& where) {
    for (torch::jit::Value* input : block->inputs()) check_owned(input, where);
    for (Node* node : block->nodes()) {
      if (node->kind() == c10::prim::GetAttr && is_module_type(node->input(0)->type())) {
        auto owner = node->input(0)->type()->expect<c10::ClassType>();
        if (c10::TypePtr attribute = owner->findAttribute(node->s(torch::jit::attr::name))) {
          node->output()->setType(attribute);
        }
      }
      for (Block* inner : node->blocks()) retype(inner, where);
      for (torch::jit::Value* output : node->outputs()) check_owned(output, where);
    }
  }

  void check_owned(const torch::jit::Value* value, const std::string& where) const {
    if (!is_module_type(value->type())) return;
    if (!created_.count(value->type()->expect<c10::ClassType>().get())) {
      throw Unsupported(where + " has a module value (%" + value->debugName() + ") that is not an attribute");
    }
  }

  std::unordered_set<const c10::ClassType*> created_;
};

void tag_block(Block* block, std::vector<Node*>& origins) {
  for (Node* node : block->nodes()) {
    if (node->kind() != c10::prim::Constant) {
      node->i_(kOriginTag, static_cast<std::int64_t>(origins.size()));
      origins.push_back(node);
    }
    for (Block* inner : node->blocks()) tag_block(inner, origins);
  }
}

using InlinedGraphs = std::unordered_map<const GraphFunction*, std::shared_ptr<Graph>>;

std::shared_ptr<Graph> inlined(const GraphFunction& function, bool simplify, InlinedGraphs& done) {
  auto found = done.find(&function);
  if (found != done.end()) return found->second;
  std::shared_ptr<Graph> graph = function.graph()->copy();
  for (Node* call : torch::jit::findAllNodes(*graph, c10::prim::CallMethod, /*recurse=*/true)) {
    GraphFunction* callee = torch::jit::tryToGraphFunction(call);
    if (callee == nullptr) continue;
    std::shared_ptr<Graph> body = inlined(*callee, /*simplify=*/true, done);
    torch::jit::inlineCallTo(call, callee, body.get());
  }
  if (simplify) {
    // What GraphFunction::optimized_graph() does to a callee before TorchScript inlines it.
    torch::jit::PeepholeOptimize(graph, /*disable_shape_peepholes=*/true);
    torch::jit::ConstantPropagationImmutableTypes(graph);
    torch::jit::ConstantPooling(graph);
  }
  done.emplace(&function, graph);
  return graph;
}

}  // namespace

Result<torch::jit::Module> copy_with_own_types(const torch::jit::Module& module) {
  try {
    TypeCopier copier;
    return copier.copy(module.deepcopy());
  } catch (const Unsupported& e) {
    return Status(ErrorCode::kUnsupported, e.what());
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, "copying the module types failed: " + torch_error_reason(e));
  }
}

std::vector<Node*> tag_method_nodes(const torch::jit::Module& module) {
  std::vector<Node*> origins;
  for (const torch::jit::Module& instance : module.modules()) {
    for (torch::jit::Function* method : instance.type()->methods()) {
      tag_block(torch::jit::toGraphFunction(*method).graph()->block(), origins);
    }
  }
  return origins;
}

Node* origin_of(const Node* node, const std::vector<Node*>& origins) {
  if (!node->hasAttribute(kOriginTag)) return nullptr;
  const std::int64_t index = node->i(kOriginTag);
  if (index < 0 || index >= static_cast<std::int64_t>(origins.size())) return nullptr;
  return origins[static_cast<std::size_t>(index)];
}

void remove_tags(const std::vector<Node*>& origins) {
  for (Node* node : origins) {
    if (node->hasAttribute(kOriginTag)) node->removeAttribute(kOriginTag);
  }
}

std::shared_ptr<Graph> inline_forward(const torch::jit::Module& module) {
  InlinedGraphs done;
  const GraphFunction& forward = torch::jit::toGraphFunction(module.get_method("forward").function());
  return inlined(forward, /*simplify=*/false, done)->copy();
}

}  // namespace profagent::torch_tk

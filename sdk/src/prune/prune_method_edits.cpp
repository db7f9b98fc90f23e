// Graph ints changed in the per-instance method that each came from (prune_method_edits.hpp).
#include "prune_method_edits.hpp"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include "prune_module_types.hpp"

namespace profagent::torch_tk {

using torch::jit::Node;
using torch::jit::Value;

std::string MethodIntEdits::add(const IntEditSpec& spec, std::int64_t value, const PruneAnalysis& analysis) {
  Node* origin = origin_of(spec.node, analysis.origins);
  if (origin == nullptr || spec.input >= origin->inputs().size()) {
    return "the int of " + analysis.where(spec.node) + " has no counterpart in its module's code";
  }
  const Use use{origin, spec.input};
  where_.emplace(use, analysis.where(spec.node));
  graphs_.insert(origin->owningGraph());
  bool agrees = true;
  if (spec.element < 0) {
    auto [entry, inserted] = scalars_.try_emplace(use, value);
    agrees = inserted || entry->second == value;
  } else {
    auto [entry, inserted] = elements_[use].try_emplace(spec.element, value);
    agrees = inserted || entry->second == value;
  }
  if (agrees) return "";
  return "the code of " + analysis.where(spec.node) + " runs more than once and would need two different widths";
}

std::string MethodIntEdits::check() const {
  for (const auto& [use, elements] : elements_) {
    const Value* list = use.first->input(use.second);
    std::size_t size = 0;
    if (list->node()->kind() == c10::prim::ListConstruct) {
      size = list->node()->inputs().size();
    } else if (auto constant = torch::jit::toIValue(list); constant && constant->isIntList()) {
      size = constant->toIntVector().size();
    }
    if (size <= static_cast<std::size_t>(elements.rbegin()->first)) {
      return "the size list of " + where_.at(use) + " is built in its module's code in a way pruning cannot rewrite";
    }
  }
  return "";
}

void MethodIntEdits::apply() {
  for (const auto& [use, value] : scalars_) {
    torch::jit::WithInsertPoint point(use.first);
    use.first->replaceInput(use.second, use.first->owningGraph()->insertConstant(value));
  }
  for (const auto& [use, elements] : elements_) {
    Node* node = use.first;
    torch::jit::Graph* graph = node->owningGraph();
    torch::jit::WithInsertPoint point(node);
    Value* list = node->input(use.second);
    if (list->node()->kind() == c10::prim::ListConstruct) {
      std::vector<Value*> items(list->node()->inputs().begin(), list->node()->inputs().end());
      for (const auto& [element, value] : elements) items[static_cast<std::size_t>(element)] = graph->insertConstant(value);
      Node* rebuilt = graph->insertNode(graph->createList(list->type()->expectRef<c10::ListType>().getElementType(), items));
      node->replaceInput(use.second, rebuilt->output());
      continue;
    }
    std::vector<std::int64_t> ints = torch::jit::toIValue(list)->toIntVector();
    for (const auto& [element, value] : elements) ints[static_cast<std::size_t>(element)] = value;
    node->replaceInput(use.second, graph->insertConstant(c10::IValue(ints)));
  }
}

void MethodIntEdits::eliminate_dead_code() {
  for (torch::jit::Graph* graph : graphs_) torch::jit::EliminateDeadCode(graph->block());
}

}  // namespace profagent::torch_tk

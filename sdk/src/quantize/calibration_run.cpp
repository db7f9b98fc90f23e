// Calibration: the folded fp32 graph run on real inputs with the values that need scales as its outputs.
#include <torch/csrc/jit/api/function_impl.h>

#include <unordered_map>

#include "profagent/torch/errors.hpp"
#include "static_internal.hpp"

namespace profagent::quantize {

Status run_calibration(Graph& graph, const c10::IValue& self, const std::vector<Value*>& observed,
                       const std::vector<std::vector<c10::IValue>>& inputs,
                       std::vector<RangeObserver>& observers) {
  // A copy whose outputs are the observed values, in order (Graph::copy keeps node order, so the
  // k-th node's outputs map onto the copy's k-th node's).
  std::shared_ptr<Graph> copy = graph.copy();
  std::unordered_map<const Value*, Value*> to_copy;
  for (std::size_t i = 0; i < graph.inputs().size(); ++i) to_copy[graph.inputs()[i]] = copy->inputs()[i];
  auto original = graph.nodes().begin();
  auto copied = copy->nodes().begin();
  for (; original != graph.nodes().end(); ++original, ++copied) {
    for (std::size_t i = 0; i < original->outputs().size(); ++i)
      to_copy[original->outputs()[i]] = copied->outputs()[i];
  }
  while (!copy->outputs().empty()) copy->eraseOutput(0);
  std::vector<Value*> outputs;
  for (const Value* value : observed) outputs.push_back(to_copy.at(value));
  Value* tuple = copy->insertNode(copy->createTuple(outputs))->output();
  copy->registerOutput(tuple);
  torch::jit::GraphFunction function(c10::QualifiedName(std::string("profagent_static_int8_calibration")),
                                     copy, nullptr);

  torch::NoGradGuard no_grad;
  for (std::size_t batch = 0; batch < inputs.size(); ++batch) {
    std::vector<c10::IValue> stack;
    stack.push_back(self);
    stack.insert(stack.end(), inputs[batch].begin(), inputs[batch].end());
    c10::IValue result;
    try {
      result = function(std::move(stack));
    } catch (const std::exception& error) {
      return Status(ErrorCode::kRuntime, "calibration batch " + std::to_string(batch) +
                                             " failed: " + torch_tk::torch_error_reason(error));
    }
    const auto& elements = result.toTupleRef().elements();
    for (std::size_t i = 0; i < elements.size(); ++i) {
      if (!elements[i].isTensor() || !elements[i].toTensor().is_floating_point())
        return Status(ErrorCode::kUnsupported, "value %" + observed[i]->debugName() + " (input of " +
                                                   observed[i]->node()->kind().toQualString() +
                                                   ") is not a floating-point tensor");
      observers[i].add(elements[i].toTensor());
    }
  }
  return Status::ok();
}

}  // namespace profagent::quantize

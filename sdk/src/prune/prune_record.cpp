// Concrete shapes of every tensor value of the graph that is pruned, by running that graph once.
//
// Why not the tracer: a traced graph is a different graph (ints baked per call site, no branches), and
// mapping its values back to the scripted graph we edit is guesswork. Instead a private op,
// profagent::record_value(Any, int id), is inserted after every tensor-producing node of the inlined
// graph (and profagent::record_block(int id) at the top of every block, to know which branches ran),
// a copy of the graph runs once in the plain interpreter (no optimisation pass that could rewrite the
// graph), and the inserted nodes are removed again.
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/library.h>

#include <exception>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "profagent/log.hpp"
#include "prune_internal.hpp"
#include "prune_ir.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

struct Recording {
  std::unordered_map<std::int64_t, PruneShape> shapes;
  std::unordered_set<std::int64_t> varying;
  std::unordered_set<std::int64_t> blocks;
};

thread_local Recording* active_recording = nullptr;

void record_value(const at::Tensor& tensor, std::int64_t id) {
  if (active_recording == nullptr || !tensor.defined()) return;
  PruneShape shape = tensor.sizes().vec();
  auto [found, inserted] = active_recording->shapes.emplace(id, shape);
  if (!inserted && found->second != shape) active_recording->varying.insert(id);
}

// Any: at runtime a Tensor-typed value can be None (Optional) or Uninitialized (a variable of a
// branch that returned early); only tensors are recorded.
void record_any(const c10::IValue& value, std::int64_t id) {
  if (value.isTensor()) record_value(value.toTensor(), id);
}

void record_block(std::int64_t id) {
  if (active_recording != nullptr) active_recording->blocks.insert(id);
}

}  // namespace

}  // namespace profagent::torch_tk

// CONSERVATIVE: the ops have side effects (they write the recording), so no pass may drop or move them.
TORCH_LIBRARY_FRAGMENT(profagent, m) {
  m.def(torch::schema("profagent::record_value(Any x, int id) -> ()", c10::AliasAnalysisKind::CONSERVATIVE),
        &profagent::torch_tk::record_any);
  m.def(torch::schema("profagent::record_block(int id) -> ()", c10::AliasAnalysisKind::CONSERVATIVE),
        &profagent::torch_tk::record_block);
}

namespace profagent::torch_tk {

namespace {

class Instrumenter {
 public:
  explicit Instrumenter(torch::jit::Graph& graph) : graph_(graph) {}

  void instrument() {
    for (Value* input : graph_.inputs()) {
      if (is_tensor_type(input)) record_at(input, graph_.block()->nodes().front());
    }
    instrument_block(graph_.block(), /*top=*/true);
  }

  // Removes every node instrument() inserted (recorders first, then their id constants).
  void remove() {
    for (auto it = inserted_.rbegin(); it != inserted_.rend(); ++it) (*it)->destroy();
    inserted_.clear();
  }

  const std::vector<const Value*>& values() const { return values_; }
  const std::vector<const Block*>& blocks() const { return blocks_; }

 private:
  void instrument_block(Block* block, bool top) {
    if (!top) {
      const std::int64_t id = static_cast<std::int64_t>(blocks_.size());
      blocks_.push_back(block);
      Node* first = block->nodes().front();
      insert_call("profagent::record_block", {}, id, first);
    }
    // Collect first: the loop inserts nodes.
    std::vector<Node*> nodes(block->nodes().begin(), block->nodes().end());
    for (Node* node : nodes) {
      for (Block* sub : node->blocks()) instrument_block(sub, false);
      Node* next = node->next();
      for (Value* output : node->outputs()) {
        if (is_tensor_like(output)) record_at(output, next);
      }
    }
  }

  void record_at(Value* value, Node* before) {
    const std::int64_t id = static_cast<std::int64_t>(values_.size());
    values_.push_back(value);
    insert_call("profagent::record_value", {value}, id, before);
  }

  void insert_call(const char* op, std::vector<Value*> args, std::int64_t id, Node* before) {
    torch::jit::WithInsertPoint point(before);
    Value* id_value = graph_.insertConstant(id);
    inserted_.push_back(id_value->node());
    args.push_back(id_value);
    Node* call = graph_.create(c10::Symbol::fromQualString(op), args, 0);
    graph_.insertNode(call);
    inserted_.push_back(call);
  }

  torch::jit::Graph& graph_;
  std::vector<const Value*> values_;
  std::vector<const Block*> blocks_;
  std::vector<Node*> inserted_;
};

}  // namespace

Status record_shapes(PruneAnalysis& analysis, const std::vector<torch::jit::IValue>& inputs) {
  Instrumenter instrumenter(*analysis.graph);
  instrumenter.instrument();
  Recording recording;
  std::string error;
  // Three runs. Without and with autograd: code may branch on torch.is_grad_enabled() (nn.MultiheadAttention
  // takes its fused fast path only without grad). And in training mode, on a copy (batch norm would
  // update the working copy's statistics): branches on `self.training` (stochastic depth on the residual
  // streams of ConvNeXt and EfficientNetV2, googlenet's auxiliary classifiers) then have shapes and are
  // analysed, instead of freezing everything they read. The later runs are best effort.
  struct Run {
    const char* what;
    bool grad;
    bool training;
  };
  for (const Run& run : {Run{"eval", false, false}, Run{"with autograd", true, false}, Run{"training mode", false, true}}) {
    try {
      torch::jit::Module self = analysis.module;
      if (run.training) {
        self = analysis.module.deepcopy();
        self.train();
      }
      // The interpreter preprocesses its own copy; running a copy keeps our graph free of its changes.
      torch::jit::Code code(analysis.graph->copy(), "profagent_prune_record");
      torch::jit::InterpreterState state(code);
      torch::jit::Stack stack;
      stack.push_back(self._ivalue());
      stack.insert(stack.end(), inputs.begin(), inputs.end());
      torch::AutoGradMode grad_mode(run.grad);
      active_recording = &recording;
      state.run(stack);
    } catch (const std::exception& e) {
      if (!run.grad && !run.training) {
        error = torch_error_reason(e);
        break;
      }
      log().debug("pruning {}: the recording run in {} failed ({}); shapes of the other runs are used",
                  analysis.model_name, run.what, torch_error_reason(e));
    }
    active_recording = nullptr;
  }
  active_recording = nullptr;
  for (const auto& [id, shape] : recording.shapes) {
    const Value* value = instrumenter.values()[static_cast<std::size_t>(id)];
    if (recording.varying.count(id)) {
      analysis.varying.insert(value);
    } else {
      analysis.shapes[value] = shape;
    }
  }
  for (std::int64_t id : recording.blocks) {
    analysis.executed_blocks.insert(instrumenter.blocks()[static_cast<std::size_t>(id)]);
  }
  instrumenter.remove();
  if (!error.empty()) {
    return Status(ErrorCode::kRuntime,
                  "pruning " + analysis.model_name + ": the forward pass failed while recording shapes: " + error);
  }
  return Status::ok();
}

}  // namespace profagent::torch_tk

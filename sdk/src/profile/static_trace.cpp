// Tracing a module for the static profile: the traced graph, the input shapes, and which module's
// forward ran each traced node (ScopeRecorder).
#include <ATen/record_function.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <chrono>
#include <exception>
#include <unordered_map>
#include <utility>

#include "profagent/clock.hpp"
#include "profagent/log.hpp"
#include "profagent/profile/static_profile.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/torch/model_io.hpp"
#include "record_function_values.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Node;

// ---------------------------------------------------------------------------------------------------
// Which module's forward executed each op: the interpreter opens a RecordFunction frame (scope
// TORCHSCRIPT_FUNCTION) for every method or function it calls, with the arguments as inputs; a method's
// first argument is the module object. Nodes the tracer appended while a frame was innermost belong to
// that frame's module; free functions (F.relu, torchvision helpers) keep their caller's. It reads the
// frames' inputs, so it records nothing where kCanReadRecordFunctionValues is false.

class ScopeRecorder {
 public:
  explicit ScopeRecorder(const torch::jit::Module& root) {
    for (const auto& entry : root.named_modules()) paths_[entry.value._ivalue().get()] = entry.name;
  }
  ScopeRecorder(const ScopeRecorder&) = delete;
  ScopeRecorder& operator=(const ScopeRecorder&) = delete;
  ~ScopeRecorder() { stop(); }

  void start() {
    if (!kCanReadRecordFunctionValues) return;
    active_ = this;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(&ScopeRecorder::on_enter, &ScopeRecorder::on_exit)
            .needsInputs(true)
            .scopes({at::RecordScope::TORCHSCRIPT_FUNCTION}));
    started_ = true;
  }
  void stop() {
    if (!started_) return;
    at::removeCallback(handle_);
    active_ = nullptr;
    started_ = false;
  }

  bool usable() const { return frames_seen_ > 0 && !failed_; }
  std::unordered_map<const Node*, std::string> take_scopes() { return std::move(scopes_); }

 private:
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& frame) {
    if (active_ != nullptr) active_->enter(frame);
    return nullptr;
  }
  static void on_exit(const at::RecordFunction&, at::ObserverContext*) {
    if (active_ != nullptr) active_->exit();
  }

  void enter(const at::RecordFunction& frame) noexcept {
    try {
      assign_new_nodes();
      std::string path = stack_.empty() ? std::string() : stack_.back();
      auto inputs = frame.inputs();
      if (!inputs.empty() && inputs[0].isObject()) {
        auto found = paths_.find(&inputs[0].toObjectRef());
        if (found != paths_.end()) path = found->second;
      }
      stack_.push_back(std::move(path));
      ++frames_seen_;
    } catch (...) {
      failed_ = true;
    }
  }
  void exit() noexcept {
    try {
      assign_new_nodes();
      if (!stack_.empty()) stack_.pop_back();
    } catch (...) {
      failed_ = true;
    }
  }

  // The tracer only appends to its graph, so the nodes after the last one seen were all recorded
  // while the current frame was innermost.
  void assign_new_nodes() {
    auto state = torch::jit::tracer::getTracingState();
    if (!state) return;
    torch::jit::Block* block = state->graph->block();
    if (graph_ != state->graph.get()) {
      graph_ = state->graph.get();
      last_ = nullptr;
    }
    Node* node = last_ != nullptr ? last_->next() : *block->nodes().begin();
    const std::string& path = stack_.empty() ? root_ : stack_.back();
    for (; node != block->return_node(); node = node->next()) {
      scopes_[node] = path;
      last_ = node;
    }
  }

  static thread_local ScopeRecorder* active_;
  std::unordered_map<const c10::ivalue::Object*, std::string> paths_;
  std::vector<std::string> stack_;
  std::unordered_map<const Node*, std::string> scopes_;
  const torch::jit::Graph* graph_ = nullptr;
  Node* last_ = nullptr;
  const std::string root_;
  at::CallbackHandle handle_ = 0;
  bool started_ = false;
  bool failed_ = false;
  std::int64_t frames_seen_ = 0;
};

thread_local ScopeRecorder* ScopeRecorder::active_ = nullptr;

void collect_input_shapes(const c10::IValue& value, std::vector<Shape>& shapes) {
  if (value.isTensor()) {
    shapes.push_back(value.toTensor().sizes().vec());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTupleRef().elements()) collect_input_shapes(element, shapes);
  } else if (value.isList()) {
    for (const auto& element : value.toListRef()) collect_input_shapes(element, shapes);
  }
}

}  // namespace

Result<TracedModel> trace_for_profile(const torch::jit::Module& module,
                                      const std::vector<torch::jit::IValue>& inputs,
                                      const std::string& model_name) {
  const auto start = std::chrono::steady_clock::now();
  TracedModel traced;
  traced.model = model_name;
  if (traced.model.empty()) traced.model = module.type()->name() ? module.type()->name()->name() : "model";
  for (const auto& input : inputs) collect_input_shapes(input, traced.input_shapes);
  try {
    // A copy sharing the tensors: eval() must not change the caller's module, and its methods must
    // have no executor yet, because an executor made with optimizations has inlined every submodule
    // call and would run no frame a scope could be read from.
    traced.module = module.clone(/*inplace=*/true);
    traced.module.eval();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime,
                  "static profile of " + traced.model + ": cannot copy the module: " + torch_error_reason(e));
  }
  ScopeRecorder recorder(traced.module);
  try {
    torch::NoGradGuard no_grad;  // also what makes nn.MultiheadAttention take its fused fast path
    torch::jit::GraphOptimizerEnabledGuard no_inlining(false);
    recorder.start();
    auto result = torch::jit::tracer::trace(
        torch::jit::Stack(inputs.begin(), inputs.end()),
        [&traced](torch::jit::Stack args) -> torch::jit::Stack {
          // The tracer refuses None in an output (googlenet's NamedTuple in eval mode): it gets the
          // output's tensors, which is all a profile needs of it.
          const std::vector<torch::Tensor> tensors =
              output_tensors(traced.module.forward(std::vector<c10::IValue>(args.begin(), args.end())));
          return torch::jit::Stack(tensors.begin(), tensors.end());
        },
        [](const at::Tensor&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/false,
        &traced.module);
    recorder.stop();
    traced.graph = result.first->graph;
  } catch (const std::exception& e) {
    recorder.stop();
    return Status(ErrorCode::kRuntime, "static profile of " + traced.model +
                                           ": the forward pass failed while tracing: " + torch_error_reason(e));
  }
  traced.has_scopes = recorder.usable();
  traced.scopes = recorder.take_scopes();
  if (!traced.has_scopes) {
    log().warn(
        "static profile of {}: no module scopes recorded; parameter-free ops go to their producer's layer",
        traced.model);
  }
  traced.seconds = seconds_since(start);
  return traced;
}

}  // namespace profagent::torch_tk

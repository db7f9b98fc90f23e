// Layers timed alone on the input they received in a forward of the whole model (isolated_layers.hpp).
#include "profagent/profile/isolated_layers.hpp"

#include <ATen/record_function.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <unordered_map>
#include <utility>

#include "profagent/torch/errors.hpp"
#include "profagent/torch/heap.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/torch/threads.hpp"
#include "record_function_values.hpp"

namespace profagent::torch_tk {

namespace {

// The arguments (self excluded) of the first call of each wanted module's own method, copied: the
// forward goes on after the call and may change a tensor in place (relu_, add_).
class InputCapture {
 public:
  explicit InputCapture(std::unordered_map<const c10::ivalue::Object*, std::size_t> wanted, std::size_t count)
      : wanted_(std::move(wanted)), captured_(count) {}
  InputCapture(const InputCapture&) = delete;
  InputCapture& operator=(const InputCapture&) = delete;
  ~InputCapture() { stop(); }

  void start() {
    active_ = this;
    handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(&InputCapture::on_enter)
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
  std::vector<std::vector<c10::IValue>>& captured() { return captured_; }

 private:
  static std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& frame) {
    if (active_ != nullptr) active_->enter(frame);
    return nullptr;
  }
  void enter(const at::RecordFunction& frame) noexcept {
    try {
      auto inputs = frame.inputs();
      if (inputs.empty() || !inputs[0].isObject()) return;
      auto found = wanted_.find(&inputs[0].toObjectRef());
      if (found == wanted_.end() || !captured_[found->second].empty()) return;
      std::vector<c10::IValue>& copy = captured_[found->second];
      for (std::size_t i = 1; i < inputs.size(); ++i)
        copy.push_back(inputs[i].isTensor() ? c10::IValue(inputs[i].toTensor().clone()) : inputs[i]);
    } catch (...) {
    }
  }

  static thread_local InputCapture* active_;
  std::unordered_map<const c10::ivalue::Object*, std::size_t> wanted_;
  std::vector<std::vector<c10::IValue>> captured_;
  at::CallbackHandle handle_ = 0;
  bool started_ = false;
};

thread_local InputCapture* InputCapture::active_ = nullptr;

Result<torch::jit::Module> submodule_at(const torch::jit::Module& root, const std::string& path) {
  for (const auto& entry : root.named_modules())
    if (entry.name == path) return entry.value;
  return Status(ErrorCode::kInvalidArgument, "no submodule '" + path + "' in the model");
}

void set_eval(torch::jit::Module& module) {
  for (auto child : module.modules())
    if (child.hasattr("training")) child.setattr("training", false);
}

// Each layer's input, from one forward of a copy that shares the tensors and whose fresh executors
// run without optimization, so that every submodule call is an interpreter frame of its own.
Result<std::vector<std::vector<c10::IValue>>> capture_inputs(const torch::jit::Module& module,
                                                             const std::vector<torch::jit::IValue>& inputs,
                                                             const std::vector<std::string>& layers) {
  torch::jit::Module copy = module.clone(/*inplace=*/true);
  set_eval(copy);
  std::unordered_map<const c10::ivalue::Object*, std::size_t> wanted;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    PROFAGENT_ASSIGN_OR_RETURN(torch::jit::Module layer, submodule_at(copy, layers[i]));
    wanted.emplace(layer._ivalue().get(), i);
  }
  InputCapture capture(std::move(wanted), layers.size());
  try {
    torch::jit::GraphOptimizerEnabledGuard no_inlining(false);
    capture.start();
    (void)copy.forward(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end()));
    capture.stop();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime,
                  "the model's forward failed while capturing its layers' inputs: " + torch_error_reason(e));
  }
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (capture.captured()[i].empty())
      return Status(
          ErrorCode::kUnsupported,
          "layer '" + layers[i] +
              "' was not called through its own forward (an inlined model has no layer to time alone)");
  return std::move(capture.captured());
}

}  // namespace

Result<std::vector<IsolatedLayerTime>> time_layers_alone(const torch::jit::Module& module,
                                                         const std::vector<torch::jit::IValue>& inputs,
                                                         const std::vector<std::string>& layers,
                                                         const IsolatedTimingOptions& options) {
  if (options.repeats < 1 || options.warmup < 0)
    return Status(ErrorCode::kInvalidArgument,
                  "timing layers alone needs repeats >= 1 and warmup >= 0, got " +
                      std::to_string(options.repeats) + " and " + std::to_string(options.warmup));
  if (!kCanReadRecordFunctionValues)
    return Status(ErrorCode::kUnsupported,
                  "timing layers alone needs RecordFunction inputs (a release build)");
  keep_freed_memory_for_reuse();  // the same heap as the dynamic profile's forwards (heap.hpp)
  ThreadsGuard threads(options.threads);
  torch::NoGradGuard no_grad;
  PROFAGENT_ASSIGN_OR_RETURN(auto captured, capture_inputs(module, inputs, layers));
  bool cuda = false;
  for (const auto& input : inputs) cuda |= input.isTensor() && input.toTensor().is_cuda();
  std::vector<IsolatedLayerTime> times;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    PROFAGENT_ASSIGN_OR_RETURN(torch::jit::Module layer, submodule_at(module, layers[i]));
    if (layer.hasattr("training") && layer.attr("training").toBool()) {
      layer = layer.clone();
      set_eval(layer);
    }
    IsolatedLayerTime time;
    time.name = layers[i];
    try {
      for (int w = 0; w < options.warmup; ++w) (void)layer.forward(captured[i]);
      if (cuda) torch::cuda::synchronize();
      for (int r = 0; r < options.repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        (void)layer.forward(captured[i]);
        if (cuda) torch::cuda::synchronize();
        time.samples_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
    } catch (const std::exception& e) {
      return Status(ErrorCode::kRuntime, "layer '" + layers[i] + "' failed alone: " + torch_error_reason(e));
    }
    time.p50_ms = percentile(time.samples_ms, 0.5);
    time.min_ms = *std::min_element(time.samples_ms.begin(), time.samples_ms.end());
    times.push_back(std::move(time));
  }
  return times;
}

}  // namespace profagent::torch_tk

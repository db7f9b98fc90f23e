// compute_gradients: the calibration pass of gradient-based importance criteria (Taylor). Kept apart
// from the scoring helpers because it runs the model and must leave it exactly as it found it.
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "profagent/log.hpp"
#include "profagent/torch/importance.hpp"
#include "profagent/torch/model_io.hpp"

namespace profagent::torch_tk {

namespace {

// What compute_gradients changes in a module, put back on every way out (errors included), because
// the caller's model is usually a shared artifact or the one about to be pruned.
class ModuleStateGuard {
 public:
  explicit ModuleStateGuard(torch::jit::Module& module) {
    for (const torch::jit::Module& sub : module.modules())
      if (sub.hasattr("training")) training_.emplace_back(sub, sub.is_training());
    for (const auto& named : module.named_parameters(/*recurse=*/true))
      params_.push_back({named.value, named.value.requires_grad(), named.value.grad()});
    for (const auto& named : module.named_buffers(/*recurse=*/true))
      buffers_.push_back({named.name, named.value, named.value.clone()});
  }
  ~ModuleStateGuard() {
    try {
      restore();
    } catch (const std::exception& error) {
      profagent::log().error("compute_gradients: could not restore the module's state: {}", error.what());
    }
  }
  ModuleStateGuard(const ModuleStateGuard&) = delete;
  ModuleStateGuard& operator=(const ModuleStateGuard&) = delete;

 private:
  struct Param {
    torch::Tensor tensor;
    bool requires_grad;
    torch::Tensor grad;
  };
  struct Buffer {
    std::string name;
    torch::Tensor tensor;
    torch::Tensor saved;
  };

  void restore() {
    // One setattr per module: train() would recurse and undo the children restored before.
    for (auto& [sub, training] : training_) sub.setattr("training", training);
    for (Param& param : params_) {
      param.tensor.mutable_grad() = param.grad;
      param.tensor.requires_grad_(param.requires_grad);
    }
    torch::NoGradGuard no_grad;
    bool changed = false;
    for (Buffer& buffer : buffers_) {
      if (torch::equal(buffer.tensor, buffer.saved)) continue;
      buffer.tensor.copy_(buffer.saved);
      changed = true;
    }
    if (changed)
      profagent::log().warn(
          "compute_gradients: the forward changed the model's buffers (restored): a graph traced in training "
          "mode updates BatchNorm statistics whatever eval() says, and its gradients used batch statistics");
  }

  std::vector<std::pair<torch::jit::Module, bool>> training_;
  std::vector<Param> params_;
  std::vector<Buffer> buffers_;
};

Status check_batch(std::size_t index, const torch::Tensor& inputs, const torch::Tensor& labels) {
  const std::string where = "calibration batch " + std::to_string(index);
  if (!inputs.defined() || inputs.dim() == 0 || inputs.size(0) == 0)
    return Status(ErrorCode::kInvalidArgument, where + ": inputs must be a non-empty tensor [N, ...]");
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != inputs.size(0))
    return Status(ErrorCode::kInvalidArgument,
                  where + ": labels must be [" + std::to_string(inputs.size(0)) + "] (one per input), not " +
                      (labels.defined() ? shape_text(labels.sizes()) : std::string("undefined")));
  if (labels.is_floating_point() || labels.is_complex() || labels.scalar_type() == torch::kBool)
    return Status(ErrorCode::kInvalidArgument, where + ": labels must be integer class indices");
  if (labels.numel() > 0 && labels.min().item<std::int64_t>() < 0)
    return Status(ErrorCode::kInvalidArgument,
                  where + ": label " + std::to_string(labels.min().item<std::int64_t>()) + " is negative");
  return Status::ok();
}

// The mean cross-entropy of one batch; checks the output against the labels first.
Result<torch::Tensor> batch_loss(torch::jit::Module& module, std::size_t index, const torch::Tensor& inputs,
                                 const torch::Tensor& labels) {
  const std::string where = "calibration batch " + std::to_string(index);
  torch::jit::IValue output;
  try {
    output = module.forward({inputs});
  } catch (const std::exception& error) {
    return Status(ErrorCode::kRuntime, where + ": the model's forward failed: " + torch_error_reason(error));
  }
  auto selected = select_output(output, "", "model");
  if (!selected) return std::move(selected).take_status().with_context(where);
  torch::Tensor logits = selected.value();
  if (logits.dim() != 2 || logits.size(0) != inputs.size(0) || !logits.is_floating_point())
    return Status(ErrorCode::kInvalidArgument,
                  where + ": the model's output is " + shape_text(logits.sizes()) + " " +
                      std::string(c10::toString(logits.scalar_type())) +
                      ", expected floating-point logits [" + std::to_string(inputs.size(0)) + ", classes]");
  const std::int64_t classes = logits.size(1);
  const std::int64_t top = labels.max().item<std::int64_t>();
  if (top >= classes)
    return Status(ErrorCode::kInvalidArgument, where + ": label " + std::to_string(top) +
                                                   " is out of range for the model's " +
                                                   std::to_string(classes) + " classes");
  torch::Tensor loss =
      torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), labels.to(torch::kInt64));
  if (!torch::isfinite(loss).item<bool>())
    return Status(ErrorCode::kRuntime, where + ": the loss is not finite (" +
                                           std::to_string(loss.item<double>()) +
                                           "); gradients from it would mean nothing");
  return loss;
}

}  // namespace

Result<GradientMap> compute_gradients(torch::jit::Module& module,
                                      const std::vector<std::pair<torch::Tensor, torch::Tensor>>& batches) {
  if (batches.empty()) return Status(ErrorCode::kInvalidArgument, "compute_gradients: no calibration batch");
  for (std::size_t i = 0; i < batches.size(); ++i)
    PROFAGENT_RETURN_IF_ERROR(check_batch(i, batches[i].first, batches[i].second));

  ModuleStateGuard guard(module);
  // The caller may hold a no-grad or inference-mode guard (evaluation code does); this pass needs autograd.
  c10::InferenceMode not_inference(false);
  torch::AutoGradMode grad_mode(true);
  // eval() would assert on a module defined without a `training` attribute; such a module has no
  // mode to switch.
  for (torch::jit::Module sub : module.modules())
    if (sub.hasattr("training")) sub.setattr("training", false);
  std::vector<torch::Tensor> params;
  std::vector<std::string> names;
  for (const auto& named : module.named_parameters(/*recurse=*/true)) {
    torch::Tensor param = named.value;
    param.mutable_grad() = torch::Tensor();
    param.requires_grad_(true);
    params.push_back(param);
    names.push_back(named.name);
  }

  for (std::size_t i = 0; i < batches.size(); ++i) {
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor loss,
                               batch_loss(module, i, batches[i].first, batches[i].second));
    // Each batch weighs the same: the gradient of the mean of the batches' mean losses.
    (loss / static_cast<double>(batches.size())).backward();
  }

  GradientMap gradients;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const torch::Tensor& grad = params[i].grad();
    gradients[names[i]] = grad.defined() ? grad.detach().clone() : torch::zeros_like(params[i]).detach();
  }
  return gradients;
}

}  // namespace profagent::torch_tk

// The accuracy-aware mode (dynamic_accuracy.hpp).
#include "profagent/quantize/dynamic_accuracy.hpp"

#include <torch/script.h>

#include <algorithm>
#include <cmath>

#include "profagent/torch/errors.hpp"
#include "profagent/torch/model_io.hpp"

namespace profagent::quantize {

std::vector<at::Tensor> model_outputs(const torch::jit::Module& model, const CalibrationBatches& data) {
  torch::NoGradGuard no_grad;
  torch::jit::Module module = model;  // shares the object; forward does not change it
  std::vector<at::Tensor> outputs;
  for (const at::Tensor& input : data.inputs) {
    c10::IValue out = module.forward({input});
    outputs.push_back(torch_tk::output_tensors(out).at(0).to(at::kFloat));
  }
  return outputs;
}

Measured measure_against(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& reference,
                         const CalibrationBatches& data) {
  Measured measured;
  double difference = 0.0, norm = 0.0;
  std::int64_t correct = 0, total = 0;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    difference += (outputs[i] - reference[i]).pow(2).sum().item<double>();
    norm += reference[i].pow(2).sum().item<double>();
    if (i < data.labels.size()) {
      correct += outputs[i].argmax(-1).eq(data.labels[i]).sum().item<std::int64_t>();
      total += data.labels[i].numel();
    }
  }
  measured.output_error = norm > 0 ? std::sqrt(difference / norm) : 0.0;
  if (total > 0) measured.accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(total);
  return measured;
}

Result<AccuracyAwareResult> quantize_within_budget(
    const torch::jit::Module& model, std::map<std::string, Scheme> schemes, const std::string& engine,
    const CalibrationBatches& data, const AccuracyBudget& budget,
    const std::function<void(const std::string&, long, long)>& progress) {
  if (data.inputs.empty()) return Status(ErrorCode::kInvalidArgument, "the accuracy-aware mode needs calibration data");
  if (budget.max_accuracy_drop && data.labels.size() != data.inputs.size())
    return Status(ErrorCode::kInvalidArgument, "an accuracy budget needs labelled calibration data");
  if (!budget.max_accuracy_drop && !budget.max_output_error)
    return Status(ErrorCode::kInvalidArgument, "the accuracy-aware mode needs a budget (accuracy drop or output error)");
  AccuracyAwareResult result;
  try {
    const std::vector<at::Tensor> reference = model_outputs(model, data);
    result.fp32_accuracy = measure_against(reference, reference, data).accuracy;

    std::vector<std::string> quantized;
    for (const auto& [path, scheme] : schemes)
      if (scheme != Scheme::kNone) quantized.push_back(path);
    long done = 0;
    for (const std::string& path : quantized) {
      PROFAGENT_ASSIGN_OR_RETURN(QuantizedModel alone, quantize_linear_layers(model, {{path, schemes[path]}}, engine));
      ++result.quantizations;
      result.layer_error[path] = measure_against(model_outputs(*alone.module, data), reference, data).output_error;
      if (progress) progress("layer error", ++done, static_cast<long>(quantized.size()));
    }
    // Worst first; equal errors in path order, so the same data gives the same reverts.
    std::stable_sort(quantized.begin(), quantized.end(), [&result](const std::string& a, const std::string& b) {
      return result.layer_error[a] > result.layer_error[b];
    });
    auto within = [&](const Measured& m) {
      if (budget.max_accuracy_drop && result.fp32_accuracy - m.accuracy > *budget.max_accuracy_drop) return false;
      if (budget.max_output_error && m.output_error > *budget.max_output_error) return false;
      return true;
    };
    for (std::size_t next = 0;; ++next) {
      PROFAGENT_ASSIGN_OR_RETURN(result.model, quantize_linear_layers(model, schemes, engine));
      ++result.quantizations;
      Measured m = measure_against(model_outputs(*result.model.module, data), reference, data);
      result.accuracy = m.accuracy;
      result.output_error = m.output_error;
      if (within(m) || next >= quantized.size()) break;
      schemes[quantized[next]] = Scheme::kNone;
      result.reverted.push_back(quantized[next]);
    }
    return result;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "accuracy-aware quantization failed: " + torch_tk::torch_error_reason(e));
  }
}

}  // namespace profagent::quantize

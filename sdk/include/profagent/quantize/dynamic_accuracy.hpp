#pragma once
// The accuracy-aware mode (docs/quantization.md): each quantized layer's own error measured on
// calibration data (that layer alone quantized, the model's output compared with fp32), then the
// whole plan applied and the worst layers reverted to fp32, one at a time, until the accuracy drop
// (with labels) or the output's relative L2 error is within the budget.
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "profagent/quantize/linear_quantize.hpp"

namespace profagent::quantize {

struct CalibrationBatches {
  std::vector<at::Tensor> inputs;  // [N, ...] per batch
  std::vector<at::Tensor> labels;  // [N] int64 per batch; empty: no labels (only the output error)
};

struct AccuracyBudget {
  std::optional<double> max_accuracy_drop;  // points of top-1 (needs labels)
  std::optional<double> max_output_error;   // relative L2 of the model's output against fp32
};

struct AccuracyAwareResult {
  QuantizedModel model;
  std::map<std::string, double> layer_error;  // output rel. L2 with that layer alone quantized
  std::vector<std::string> reverted;          // in the order they went back to fp32
  double fp32_accuracy = -1.0;                // percent; -1 without labels
  double accuracy = -1.0;
  double output_error = 0.0;                  // of the final model
  int quantizations = 0;                      // models built and measured
};

struct Measured {
  double accuracy = -1.0;   // percent, -1 without labels
  double output_error = 0.0;
};

// The model's output on each batch (first tensor of its output), in eval mode without gradients.
std::vector<at::Tensor> model_outputs(const torch::jit::Module& model, const CalibrationBatches& data);
Measured measure_against(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& reference,
                         const CalibrationBatches& data);

// `progress(what, done, total)` may be empty.
Result<AccuracyAwareResult> quantize_within_budget(
    const torch::jit::Module& model, std::map<std::string, Scheme> schemes, const std::string& engine,
    const CalibrationBatches& data, const AccuracyBudget& budget,
    const std::function<void(const std::string&, long, long)>& progress = {});

}  // namespace profagent::quantize

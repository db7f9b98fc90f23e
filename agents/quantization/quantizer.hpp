#pragma once
// What the quantization stage does, as plain library code (quantization_agent.cpp adapts the
// blackboard): the schemes per layer from `scheme` and a plan, the accuracy-aware mode on calibration
// data when a budget is set, and the record document. Tests call run_quantization() directly.
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "profagent/json.hpp"
#include "profagent/options.hpp"
#include "profagent/quantize/dynamic_accuracy.hpp"
#include "profagent/quantize/plan_quantization.hpp"
#include "profagent/status.hpp"

namespace profagent::agents {

struct QuantizationOptions {
  std::string scheme = "int8_dynamic";  // every quantizable layer a plan does not name
  std::string engine;                   // "" = the preferred engine of this LibTorch (onednn on x86)
  Json calibration = Json();            // dataset block for the accuracy-aware mode; null or {}: none
  std::int64_t calibration_samples = 512;
  std::int64_t calibration_batch_size = 64;
  std::uint64_t seed = 0;
  double max_accuracy_drop = -1.0;      // points; < 0: not used
  double max_output_error = -1.0;       // output rel. L2; < 0: not used
};

const OptionsSchema<QuantizationOptions>& quantization_options_schema();

struct QuantizationRequest {
  const torch::jit::Module* model = nullptr;
  std::string model_name;
  std::optional<quantize::QuantizationPlan> plan;
  quantize::CalibrationBatches calibration;  // empty: no accuracy-aware mode
  std::function<void(const std::string&, long, long)> progress;
};

struct QuantizationOutcome {
  quantize::QuantizedModel model;
  Json record;  // the quantization_record document
};

Result<QuantizationOutcome> run_quantization(const QuantizationRequest& request, const QuantizationOptions& options);

}  // namespace profagent::agents

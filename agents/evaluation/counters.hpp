#pragma once
// Counts kept over batches: top-1/top-5 accuracy against labels, and how often a model's predictions
// agree with a reference model's on the same inputs.
#include <torch/script.h>

#include <cstdint>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::agents {

// Top-1 / top-5 counts over batches of logits [N, C] and int64 labels [N].
struct AccuracyCounter {
  std::int64_t samples = 0, top1 = 0, top5 = 0;
  Status add(const torch::Tensor& logits, const torch::Tensor& labels);
};

// How often two models' top-1 predictions agree, and the largest absolute difference of their outputs.
struct AgreementCounter {
  std::int64_t samples = 0;
  std::int64_t top1_samples = 0;  // samples with a class dimension (outputs of 2 or more dims)
  // Samples whose top-1 agree; for dense outputs ([N, C, H, W]) each sample adds the fraction of
  // its positions that agree.
  double same_top1 = 0;
  double max_abs_diff = 0;
  // Σ(output − reference)² and Σ reference² over every sample: rel_l2 = sqrt(their ratio), the output
  // error of the whole set against the reference (a quantized model against its fp32 original).
  double squared_error = 0;
  double squared_reference = 0;
  Status add(const torch::Tensor& output, const torch::Tensor& reference_output);
  Json to_json() const;  // {top1 (same_top1 / top1_samples, when any), max_abs_diff, rel_l2, samples}
};

}  // namespace profagent::agents

#include "counters.hpp"

#include <algorithm>
#include <cmath>

#include "profagent/torch/model_io.hpp"

namespace profagent::agents {

using torch_tk::shape_text;

Status AccuracyCounter::add(const torch::Tensor& logits, const torch::Tensor& labels) {
  if (logits.dim() != 2 || labels.dim() != 1 || logits.size(0) != labels.size(0))
    return Status(ErrorCode::kValidation,
                  "accuracy needs logits [N, classes] and labels [N]; the model returned " +
                      shape_text(logits.sizes()) + " for labels " + shape_text(labels.sizes()));
  const std::int64_t k = std::min<std::int64_t>(5, logits.size(1));
  torch::Tensor targets = labels.to(logits.device(), torch::kLong);
  torch::Tensor top = std::get<1>(logits.topk(k, /*dim=*/1));
  top1 += logits.argmax(1).eq(targets).sum().item<std::int64_t>();
  top5 += top.eq(targets.unsqueeze(1)).any(1).sum().item<std::int64_t>();
  samples += logits.size(0);
  return Status::ok();
}

Status AgreementCounter::add(const torch::Tensor& output, const torch::Tensor& reference_output) {
  if (output.sizes() != reference_output.sizes())
    return Status(ErrorCode::kValidation, "the model's output " + shape_text(output.sizes()) +
                                              " and the reference's " + shape_text(reference_output.sizes()) +
                                              " differ in shape, so they cannot be compared");
  torch::Tensor a = output.detach().to(torch::kFloat32);
  torch::Tensor b = reference_output.to(a.device(), torch::kFloat32);
  if (a.numel() > 0) max_abs_diff = std::max(max_abs_diff, (a - b).abs().max().item<double>());
  squared_error += (a.to(torch::kFloat64) - b.to(torch::kFloat64)).square().sum().item<double>();
  squared_reference += b.to(torch::kFloat64).square().sum().item<double>();
  const std::int64_t n = a.dim() == 0 ? 1 : a.size(0);
  if (a.dim() >= 2) {
    // Per sample for [N, C] logits; per position for dense outputs ([N, C, H, W]: per pixel).
    torch::Tensor same = a.argmax(1).eq(b.argmax(1)).reshape({n, -1}).to(torch::kFloat64).mean(1);
    same_top1 += same.sum().item<double>();
    top1_samples += n;
  }
  samples += n;
  return Status::ok();
}

Json AgreementCounter::to_json() const {
  Json json = Json{{"max_abs_diff", max_abs_diff}, {"samples", samples}};
  // A zero reference has no relative error to speak of: null rather than a division by zero.
  json["rel_l2"] = squared_reference > 0 ? Json(std::sqrt(squared_error / squared_reference)) : Json(nullptr);
  if (top1_samples > 0) json["top1"] = same_top1 / static_cast<double>(top1_samples);
  return json;
}

}  // namespace profagent::agents

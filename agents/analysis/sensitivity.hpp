#pragma once
// Measured one-shot sensitivity per prunable group: the calibration loss and accuracy of the model
// with that group alone pruned at `probe_ratio` (its lowest-L1 units, the ones the pruner's L1 would
// take first), against the unpruned model. The units are removed by zeroing what reads them (the
// consumer members' slices: a consumer that sees zeros computes what it computes without the unit),
// on one copy of the model, restored after each group — one forward pass per batch and group, no
// graph rebuilt. Exact for convolutional channels; for a group with a LayerNorm (a transformer's
// width) an approximation, since the norm's statistics still count the zeroed channels.
#include <torch/script.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {
class DependencyGraph;
}

namespace profagent::agents {

struct SensitivityRequest {
  double probe_ratio = 0.5;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;  // (images, labels)
  std::vector<std::string> groups;  // names of the groups to measure (those the evidence offers)
  std::function<bool()> cancelled;
  std::function<void(long, long)> progress;
};

// {group name: {probe_ratio, loss_increase, accuracy_drop}} plus "_baseline": {loss, accuracy, samples}.
Result<Json> measure_sensitivity(const torch::jit::Module& model, const torch_tk::DependencyGraph& graph,
                                 const SensitivityRequest& request);

}  // namespace profagent::agents

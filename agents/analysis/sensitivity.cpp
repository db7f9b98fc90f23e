// One-shot sensitivity by zeroing a group's consumer slices (sensitivity.hpp).
#include "sensitivity.hpp"

#include <algorithm>
#include <map>

#include "profagent/prune/prune_apply.hpp"
#include "profagent/torch/model_io.hpp"

namespace profagent::agents {

namespace tk = torch_tk;

namespace {

struct LossAndAccuracy {
  double loss = 0.0;
  double accuracy = 0.0;
  std::int64_t samples = 0;
};

Result<LossAndAccuracy> calibration_loss(
    torch::jit::Module& module, const std::vector<std::pair<torch::Tensor, torch::Tensor>>& batches) {
  LossAndAccuracy out;
  double loss_sum = 0.0, correct = 0.0;
  for (const auto& [images, labels] : batches) {
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits,
                               tk::run_forward(module, {images}, "the calibration forward"));
    logits = logits.to(torch::kFloat32);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(labels).sum().item<double>();
    out.samples += images.size(0);
  }
  if (out.samples == 0) return Status(ErrorCode::kInvalidArgument, "no calibration samples");
  out.loss = loss_sum / static_cast<double>(out.samples);
  out.accuracy = correct / static_cast<double>(out.samples);
  return out;
}

}  // namespace

Result<Json> measure_sensitivity(const torch::jit::Module& model, const tk::DependencyGraph& graph,
                                 const SensitivityRequest& request) {
  torch::NoGradGuard no_grad;
  torch::jit::Module copy = model.clone();
  copy.eval();
  std::map<std::string, torch::Tensor> params;
  for (const auto& parameter : copy.named_parameters(/*recurse=*/true))
    params[parameter.name] = parameter.value;
  PROFAGENT_ASSIGN_OR_RETURN(LossAndAccuracy base, calibration_loss(copy, request.batches));
  Json out = Json::object();
  out["_baseline"] = Json{{"loss", base.loss}, {"accuracy", base.accuracy}, {"samples", base.samples}};
  long done = 0;
  for (const std::string& name : request.groups) {
    if (request.cancelled && request.cancelled())
      return cancelled_status("analysis", "while measuring sensitivity");
    const tk::PruneGroup* group = graph.find_group(name);
    if (group == nullptr) continue;
    tk::PruneOptions probe;
    probe.ratio = 0.0;
    probe.layer_ratios[group->key] = request.probe_ratio;
    probe.ignore_input_layer = false;
    PROFAGENT_ASSIGN_OR_RETURN(auto decisions, tk::choose_units(graph, probe));
    // The consumers' slices of the removed units; a group with no consumer (none reads it in a
    // prunable way) falls back to zeroing every member but buffers.
    bool has_consumer = false;
    for (const auto& member : group->members) has_consumer = has_consumer || member.role == "consumer";
    std::vector<std::pair<torch::Tensor, torch::Tensor>> saved;  // (parameter, its original values)
    for (const auto& decision : decisions) {
      for (const auto& member : group->members) {
        if (member.role == "buffer" || (has_consumer && member.role != "consumer")) continue;
        auto param = params.find(member.param);
        if (param == params.end()) continue;
        std::vector<std::int64_t> indices;
        for (std::int64_t id : decision.removed) {
          auto at = std::find(group->unit_ids.begin(), group->unit_ids.end(), id);
          if (at == group->unit_ids.end()) continue;
          const auto& unit = member.unit_indices[static_cast<std::size_t>(at - group->unit_ids.begin())];
          indices.insert(indices.end(), unit.begin(), unit.end());
        }
        if (indices.empty()) continue;
        saved.emplace_back(param->second, param->second.clone());
        param->second.index_fill_(member.dim, torch::tensor(indices, torch::kLong), 0.0);
      }
    }
    auto probed = calibration_loss(copy, request.batches);
    // Newest first: a parameter saved twice (a fused q/k/v weight) ends with its first saved values.
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) it->first.copy_(it->second);
    if (!probed) return std::move(probed).take_status().with_context("probing group '" + name + "'");
    out[name] = Json{{"probe_ratio", request.probe_ratio},
                     {"loss_increase", probed->loss - base.loss},
                     {"accuracy_drop", base.accuracy - probed->accuracy}};
    if (request.progress) request.progress(++done, static_cast<long>(request.groups.size()));
  }
  return out;
}

}  // namespace profagent::agents

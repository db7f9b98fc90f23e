#include "dataset_pass.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "profagent/log.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/model_io.hpp"

namespace profagent::agents {

Result<DatasetPass> evaluate_on_dataset(torch::jit::Module& model, torch::jit::Module* reference,
                                        torch_tk::Dataset& dataset, const torch::Device& device,
                                        const EvaluationOptions& options, const EvaluationHooks& hooks,
                                        spdlog::logger& log) {
  const torch_tk::DatasetInfo& info = dataset.info();
  std::int64_t count = info.size;
  if (options.limit) count = std::min(count, *options.limit);
  if (count < 1) return Status(ErrorCode::kInvalidArgument, "the dataset " + info.source + " has no samples");
  const std::int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  DatasetPass pass;
  torch_tk::Batch batch;
  std::vector<std::int64_t> indices;
  for (std::int64_t b = 0; b < batches; ++b) {
    if (hooks.cancelled && hooks.cancelled())
      return cancelled_status("evaluation", "after " + std::to_string(b) + " of " + std::to_string(batches) + " batches");
    auto own = phase(hooks, "dataset pass");
    indices.clear();
    for (std::int64_t i = b * options.batch_size; i < std::min(count, (b + 1) * options.batch_size); ++i)
      indices.push_back(i);
    Status read = dataset.read_batch(indices, batch);
    if (!read)
      return std::move(read).with_context("reading batch " + std::to_string(b + 1) + " of " +
                                          std::to_string(batches) + " from " + info.source);
    std::vector<torch::Tensor> images{batch.images.to(device)};
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits, torch_tk::run_forward(model, images, "model", options.output));
    if (b == 0 && logits.dim() == 2 && info.num_classes > 0 && logits.size(1) != info.num_classes)
      log.warn("the model has {} outputs but the dataset {} has {} classes", logits.size(1), info.source,
               info.num_classes);
    PROFAGENT_RETURN_IF_ERROR(pass.accuracy.add(logits, batch.labels));
    own.reset();
    if (reference) {
      auto agreement = phase(hooks, "agreement");
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor expected,
                                 torch_tk::run_forward(*reference, images, "reference model", options.output));
      PROFAGENT_RETURN_IF_ERROR(pass.agreement.add(logits, expected));
    }
    if (hooks.progress) hooks.progress(b + 1, batches);
  }
  return pass;
}

}  // namespace profagent::agents

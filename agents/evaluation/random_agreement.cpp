#include "random_agreement.hpp"

#include <algorithm>
#include <string>

namespace profagent::agents {

Result<AgreementCounter> agreement_on_random_inputs(torch::jit::Module& model, torch::jit::Module& reference,
                                                    const std::vector<torch_tk::InputSpec>& specs,
                                                    const torch::Device& device, const EvaluationOptions& options,
                                                    const EvaluationHooks& hooks) {
  auto timed = phase(hooks, "agreement");
  const std::int64_t count = options.limit.value_or(options.random_agreement_samples);
  const std::int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  AgreementCounter agreement;
  for (std::int64_t b = 0; b < batches; ++b) {
    if (hooks.cancelled && hooks.cancelled())
      return cancelled_status("evaluation", "after " + std::to_string(b) + " of " + std::to_string(batches) + " batches");
    const std::int64_t size = std::min(options.batch_size, count - b * options.batch_size);
    // A seed per batch (and apart from the latency input's), so any batch can be reproduced alone.
    const std::vector<torch::Tensor> inputs =
        torch_tk::make_inputs(specs, size, options.seed + 1 + static_cast<std::uint64_t>(b), device);
    // Forwards of the latency batch size: both models' graphs are already specialized for that shape
    // (the reference by the baseline's latency, the model by these forwards for its warm-up), and on
    // one CPU thread a convolution costs several times less per sample at batch 1 than at batch 32.
    const std::int64_t step = std::max<std::int64_t>(1, options.latency_batch_size);
    for (std::int64_t first = 0; first < size; first += step) {
      std::vector<torch::Tensor> chunk;
      for (const torch::Tensor& input : inputs)
        chunk.push_back(input.dim() == 0 ? input : input.narrow(0, first, std::min(step, size - first)));
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor output, torch_tk::run_forward(model, chunk, "model", options.output));
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor expected,
                                 torch_tk::run_forward(reference, chunk, "reference model", options.output));
      PROFAGENT_RETURN_IF_ERROR(agreement.add(output, expected));
    }
    if (hooks.progress) hooks.progress(b + 1, batches);
  }
  return agreement;
}

}  // namespace profagent::agents

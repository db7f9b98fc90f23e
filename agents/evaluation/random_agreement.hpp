#pragma once
// Agreement with a reference model without a dataset: both models run on the same seeded random
// inputs, drawn in batches of options.batch_size (32 inputs by default: one forward of each model).
#include <torch/script.h>

#include <vector>

#include "counters.hpp"
#include "evaluation_hooks.hpp"
#include "evaluation_options.hpp"
#include "profagent/status.hpp"
#include "profagent/torch/model_io.hpp"

namespace profagent::agents {

// options.limit inputs (else options.random_agreement_samples) shaped like `specs`; the batch b is
// drawn with seed options.seed + 1 + b. Recorded as phase "agreement".
Result<AgreementCounter> agreement_on_random_inputs(torch::jit::Module& model, torch::jit::Module& reference,
                                                    const std::vector<torch_tk::InputSpec>& specs,
                                                    const torch::Device& device, const EvaluationOptions& options,
                                                    const EvaluationHooks& hooks);

}  // namespace profagent::agents

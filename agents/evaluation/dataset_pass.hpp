#pragma once
// One pass over a dataset: the model's accuracy and, with a reference, their agreement on the same
// batches (each batch read once and fed to both).
#include <torch/script.h>

#include "counters.hpp"
#include "evaluation_hooks.hpp"
#include "evaluation_options.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {
class Dataset;
}

namespace profagent::agents {

struct DatasetPass {
  AccuracyCounter accuracy;
  AgreementCounter agreement;
};

// The first options.limit samples (all without a limit) in batches of options.batch_size. Phases:
// "dataset pass" (reading and the model's forwards) and "agreement" (the reference's forwards and the
// comparison). kCancelled between batches when hooks.cancelled says so.
Result<DatasetPass> evaluate_on_dataset(torch::jit::Module& model, torch::jit::Module* reference,
                                        torch_tk::Dataset& dataset, const torch::Device& device,
                                        const EvaluationOptions& options, const EvaluationHooks& hooks,
                                        spdlog::logger& log);

}  // namespace profagent::agents

#pragma once
// The evaluation agent's config: what it measures and how (batch sizes, warm-up, repeats, the input
// shape, the dataset), with its schema, defaults and reading in one declaration.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/options.hpp"

namespace profagent::agents {

struct EvaluationOptions {
  std::int64_t batch_size = 256;
  std::optional<std::int64_t> limit;
  std::string device = "cpu";
  std::optional<int> threads;
  int warmup = 5;
  int repeats = 30;
  std::int64_t latency_batch_size = 1;
  std::optional<std::vector<std::int64_t>> input_shape;
  bool measure_latency = true;
  bool count_macs = true;  // `macs` of one sample, from the static profile
  // Random inputs compared with the reference when there is no dataset (and no limit).
  std::int64_t random_agreement_samples = 32;
  std::uint64_t seed = 0;
  std::string output;  // which output is the prediction (torch_tk::select_output); empty: the default rule
  Json dataset;        // {format: ..., ...} or null; the agent turns it into a provider (make_dataset)
};

const OptionsSchema<EvaluationOptions>& evaluation_options_schema();

}  // namespace profagent::agents

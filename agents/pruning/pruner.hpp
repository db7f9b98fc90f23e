#pragma once
// What the pruning stage does, as plain library code (the agent in pruning_agent.cpp only adapts the
// blackboard): builds the dependency graph of a model once, chooses units by a plan, one global ratio
// or a MAC-reduction target, applies them, checks the saved-and-loaded result, and counts parameters
// and MACs before and after. Tests call run_pruning() directly; the engine is the SDK's
// profagent/prune/prune_apply.hpp.
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "plan.hpp"
#include "profagent/agent.hpp"
#include "profagent/config_schema.hpp"
#include "profagent/json.hpp"
#include "profagent/options.hpp"
#include "profagent/status.hpp"
#include "profagent/torch/importance.hpp"
#include "profagent/prune/prune_apply.hpp"

namespace spdlog {
class logger;
}

namespace profagent::torch_tk {
class Dataset;
}

namespace profagent::agents {

struct PruningOptions {
  double ratio = 0.2;  // share of every group's units to remove (unless a plan or a MAC target decides)
  // Share of the model's MACs to remove (0.2: 20% fewer); the global ratio is searched to reach it, or,
  // with a plan that names layers, one factor by which every plan ratio is multiplied (capped at 0.95).
  std::optional<double> macs_reduction;
  double macs_tolerance = 0.005;  // how far the measured reduction may land from the target
  std::string criterion = "l1";   // importance provider id
  Json criterion_config = Json::object();
  torch_tk::GroupReduction reduction = torch_tk::GroupReduction::kMean;
  std::int64_t round_to = 1;
  std::int64_t min_width = 1;
  std::vector<std::string> ignored_layers;
  bool ignore_input_layer = true;
  // Keep nn.MultiheadAttention's fused kernel: its heads then go with the residual (embedding) channels
  // they read. Default: written out, whole heads go and the embedding width stays.
  bool fused_attention = false;
  // Calibration for gradient criteria (Taylor): `samples` fixed-seed samples of the dataset in
  // batches of `batch_size` (torch_tk::calibration_indices).
  Json calibration = Json();  // the dataset block ({format, ...}); null or {}: none
  std::int64_t calibration_samples = 256;
  std::int64_t calibration_batch_size = 32;
  std::uint64_t seed = 0;
  Json to_json() const;
};

// The pruning agent's config: schema, defaults and reading in one declaration. A `calibration` given
// as an empty map reads as {}; the agent treats it as none.
const OptionsSchema<PruningOptions>& pruning_options_schema();

struct PruningHooks {
  std::function<bool()> cancelled;
  std::function<void(const std::string&, long, long)> progress;  // ("group", i, n), ("search", i, n)
  spdlog::logger* log = nullptr;                                   // null: profagent::log()
  AgentContext* phases = nullptr;  // records run_pruning's phases ("open", "prune round"); null: none
};

struct PruningRequest {
  const torch::jit::Module* model = nullptr;
  std::string model_name;  // for messages: the model's path or source
  std::vector<torch::jit::IValue> inputs;  // example inputs (batch 1)
  std::optional<PruningPlan> plan;
  std::optional<torch_tk::PruneHistory> replay;  // when set: rebuild exactly this pruning
  torch_tk::PruneCriterion criterion;            // empty: the engine's L1
};

struct PruningOutcome {
  torch_tk::PruneResult result;
  double ratio = 0.0;         // the global ratio used (searched when a MAC target was given)
  Json search = Json();       // the MAC-target search: steps, estimates, measured, seconds
  std::string mode;           // "ratio", "plan", "macs_target" or "replay"
  // The history artifact: PruneHistory::to_json() (replayable as is) plus `result`
  // (params/MACs before and after, groups, warnings, frozen notes, timings) and `search`.
  Json history_document() const;
};

Result<PruningOutcome> run_pruning(const PruningRequest& request, const PruningOptions& options,
                                   const PruningHooks& hooks = {});

// Gradients of the cross-entropy over the calibration subset of `dataset` for gradient criteria:
// options.calibration_samples fixed-seed samples (seed options.seed), in batches.
Result<torch_tk::GradientMap> calibration_gradients(const torch::jit::Module& model, torch_tk::Dataset& dataset,
                                                    const PruningOptions& options, const PruningHooks& hooks = {});

// `criterion` as the engine calls it, with `gradients` attached to every group first (when given) and
// scores cached per group, so a MAC-target search that chooses many times scores each group once.
// `criterion` must outlive the returned function.
torch_tk::PruneCriterion make_prune_criterion(torch_tk::ImportanceCriterion& criterion,
                                              std::shared_ptr<const torch_tk::GradientMap> gradients,
                                              const PruningHooks& hooks = {});

}  // namespace profagent::agents

namespace profagent::agents {
// The kind of the pruning history artifact: its own kind, so that only a pruning history can be
// connected to a pruning stage's `history` input (a loop's `history` is another thing).
constexpr const char* kPruneHistoryKind = "prune_history";
}  // namespace profagent::agents

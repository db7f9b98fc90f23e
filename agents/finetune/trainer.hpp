#pragma once
// Training, fine-tuning and BatchNorm recalibration of a TorchScript module from C++, as plain
// library code: the finetune agent is a thin adapter around it, and tests reach it without the
// plugin boundary. Generic over the SDK's Dataset interface, so any dataset provider (or a test's
// in-memory one) feeds it. No LibTorch in this header.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/config_schema.hpp"
#include "profagent/json.hpp"
#include "profagent/options.hpp"
#include "profagent/status.hpp"

namespace torch {
namespace jit {
struct Module;
}
}  // namespace torch

namespace profagent::torch_tk {
class Dataset;
}

namespace profagent::agents {

enum class TrainMode { kTrain, kBnRecalibrate };
enum class OptimizerKind { kSgd, kAdamW };
enum class ScheduleKind { kCosine, kStep, kConstant };
enum class AugmentKind { kNone, kFlipCrop };

struct TrainOptions {
  TrainMode mode = TrainMode::kTrain;
  OptimizerKind optimizer = OptimizerKind::kSgd;
  double lr = 0.01;
  double momentum = 0.9;       // SGD momentum; AdamW's beta1 stays 0.9
  double weight_decay = 5e-4;  // applied to weights of rank >= 2 only (see trainer.cpp)
  bool nesterov = false;
  ScheduleKind schedule = ScheduleKind::kCosine;
  std::int64_t step_size = 10;  // kStep: epochs between decays
  double gamma = 0.1;           // kStep: decay factor
  std::int64_t warmup_epochs = 0;
  std::int64_t epochs = 1;
  std::int64_t steps = 0;  // > 0: optimizer steps in all (overrides epochs); bn_recalibrate: batches
  std::int64_t batch_size = 128;
  std::uint64_t seed = 0;  // torch::manual_seed, shuffling order and augmentation draws
  double label_smoothing = 0.0;
  AugmentKind augment = AugmentKind::kNone;
  std::int64_t threads = 0;  // > 0: LibTorch intra-op threads while training (restored afterwards)
  std::int64_t limit = 0;    // > 0: use only the first `limit` training samples

  Json to_json() const;
};

// The batches bn_recalibrate runs when `steps` is not given.
constexpr std::int64_t kDefaultRecalibrationBatches = 100;

// The learning rate at each optimizer step (0-based): linear warmup from base/warmup_steps to base
// over the first warmup_steps, then cosine decay to 0 over the remaining steps, step decay by
// gamma every step_size_steps (counted from step 0), or constant.
struct LrSchedule {
  ScheduleKind kind = ScheduleKind::kCosine;
  double base_lr = 0.01;
  std::int64_t total_steps = 1;
  std::int64_t warmup_steps = 0;
  std::int64_t step_size_steps = 1;
  double gamma = 0.1;

  double at(std::int64_t step) const;
};

LrSchedule make_lr_schedule(const TrainOptions& options, std::int64_t steps_per_epoch,
                            std::int64_t total_steps);

struct EpochStats {
  std::int64_t epoch = 0;  // 1-based
  std::int64_t total_epochs = 0;
  std::int64_t steps = 0;  // optimizer steps in this epoch
  std::int64_t samples = 0;
  double loss = 0.0;            // mean training loss over the epoch's samples
  double train_accuracy = 0.0;  // on the (augmented) training batches, in train mode
  double lr = 0.0;              // the learning rate of the epoch's last step
  double seconds = 0.0;         // training and evaluation
  std::optional<double> eval_loss;
  std::optional<double> eval_accuracy;

  Json to_json() const;
};

struct TrainResult {
  std::vector<EpochStats> epochs;
  std::int64_t total_steps = 0;
  std::int64_t train_samples = 0;  // the training set size used (after limit)
  double seconds = 0.0;

  Json to_json() const;
};

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;
  std::int64_t samples = 0;
  double seconds = 0.0;

  Json to_json() const;
};

struct RecalibrationResult {
  std::int64_t batches = 0;
  std::int64_t samples = 0;
  std::int64_t bn_layers = 0;
  // How the running statistics were re-estimated: "cumulative" (an exact average over all
  // batches) or "ema" (BatchNorm's own momentum from reset statistics, for layers whose momentum
  // could not be read, e.g. traced models).
  std::string method;
  double seconds = 0.0;

  Json to_json() const;
};

// What a caller sees while training runs; every member may be empty.
struct TrainHooks {
  std::function<bool()> cancelled;                      // polled before every batch
  std::function<void(long done, long total)> on_batch;  // within an epoch (or pass)
  std::function<void(const EpochStats&)> on_epoch;      // after each epoch's evaluation
  AgentContext* phases = nullptr;  // records "train epoch" and "eval" (summed over epochs); null: none
};

// Trains `module` in place (the caller clones a shared module first): train mode, every parameter
// requires grad, cross-entropy on the module's forward(images) logits, the optimizer and schedule
// of `options`; evaluates on `eval` (may be null) after each epoch; leaves the module in eval mode.
// Returns kCancelled when hooks.cancelled() turns true (the module is then partly trained).
Result<TrainResult> train_module(torch::jit::Module& module, torch_tk::Dataset& train,
                                 torch_tk::Dataset* eval, const TrainOptions& options,
                                 const TrainHooks& hooks = {});

// Re-estimates every BatchNorm layer's running statistics from `data` without touching a weight:
// statistics reset, then options.steps batches (default kDefaultRecalibrationBatches) forwarded in
// train mode under no_grad; leaves the module in eval mode. kNotFound when there is no BatchNorm.
Result<RecalibrationResult> recalibrate_batchnorm(torch::jit::Module& module, torch_tk::Dataset& data,
                                                  const TrainOptions& options, const TrainHooks& hooks = {});

// Top-1 accuracy and mean cross-entropy of `module` on `data` (all of it) in eval mode, no grad.
Result<EvalResult> evaluate_module(torch::jit::Module& module, torch_tk::Dataset& data,
                                   std::int64_t batch_size, const TrainHooks& hooks = {});

// The finetune agent's config: the datasets it reads and the training options.
struct FinetuneOptions : TrainOptions {
  Json dataset;                      // {format: idx|cifar|image_folder, ...that provider's config}; required
  std::optional<Json> eval_dataset;  // the same, evaluated after each epoch
};

// The finetune agent's config: schema, defaults and reading in one declaration (the training options'
// own rules, e.g. nesterov needs a momentum, are checked when it is read).
const OptionsSchema<FinetuneOptions>& finetune_options_schema();

}  // namespace profagent::agents

#include "trainer.hpp"

#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "profagent/phases.hpp"
#include "profagent/torch/threads.hpp"
#include "profagent/clock.hpp"
#include "profagent/text.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/torch/model_io.hpp"
#include "profagent/torch/dataset.hpp"

namespace profagent::agents {

namespace {

using Clock = SteadyClock;

const char* to_string(TrainMode mode) {
  return mode == TrainMode::kTrain ? "train" : "bn_recalibrate";
}
const char* to_string(OptimizerKind kind) {
  return kind == OptimizerKind::kSgd ? "sgd" : "adamw";
}
const char* to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kCosine:
      return "cosine";
    case ScheduleKind::kStep:
      return "step";
    case ScheduleKind::kConstant:
      return "constant";
  }
  return "?";
}
const char* to_string(AugmentKind kind) {
  return kind == AugmentKind::kNone ? "none" : "flip_crop";
}


torch::Device module_device(const torch::jit::Module& module) {
  for (const auto& parameter : module.parameters()) return parameter.device();
  return torch::Device(torch::kCPU);
}

// The batches of one pass: `order` cut into batch_size pieces. A last partial batch is dropped
// when there is at least one full one, so BatchNorm never normalizes over a handful of samples and
// every step sees the same batch size.
std::int64_t batches_per_pass(std::int64_t samples, std::int64_t batch_size) {
  if (samples <= 0) return 0;
  return samples >= batch_size ? samples / batch_size : 1;
}

std::vector<std::int64_t> batch_indices(const std::vector<std::int64_t>& order, std::int64_t batch,
                                        std::int64_t batch_size) {
  auto begin = order.begin() + std::min<std::int64_t>(batch * batch_size, order.size());
  auto end = order.begin() + std::min<std::int64_t>((batch + 1) * batch_size, order.size());
  return std::vector<std::int64_t>(begin, end);
}

// Random horizontal flip and random crop of a padded copy, per sample, drawn from `rng` so that a
// seed fixes them. The padding is filled with each channel's smallest value in the batch: for
// normalized images that is raw black (what torchvision's RandomCrop pads with), not the gray that
// zero means after normalization.
torch::Tensor flip_crop(const torch::Tensor& images, std::mt19937_64& rng) {
  const std::int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const std::int64_t pad = std::clamp<std::int64_t>(std::min(h, w) / 8, 2, 4);
  torch::Tensor fill = images.amin({0, 2, 3}).view({1, c, 1, 1});
  torch::Tensor padded = fill.expand({n, c, h + 2 * pad, w + 2 * pad}).clone();
  padded.narrow(2, pad, h).narrow(3, pad, w).copy_(images);
  torch::Tensor out = torch::empty_like(images);
  std::uniform_int_distribution<std::int64_t> offset(0, 2 * pad);
  std::bernoulli_distribution flip(0.5);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t dy = offset(rng), dx = offset(rng);
    torch::Tensor crop = padded[i].narrow(1, dy, h).narrow(2, dx, w);
    out[i].copy_(flip(rng) ? crop.flip({2}) : crop);
  }
  return out;
}

struct PreparedBatch {
  torch::Tensor images;
  torch::Tensor labels;
};

Result<PreparedBatch> read_prepared(torch_tk::Dataset& data, const std::vector<std::int64_t>& indices,
                                    torch_tk::Batch& buffer, const torch::Device& device) {
  Status read = data.read_batch(indices, buffer);
  if (!read.is_ok())
    return std::move(read).with_context("reading a batch of " + data.info().format + " data");
  if (!buffer.images.defined() || buffer.images.dim() != 4)
    return Status(ErrorCode::kRuntime, "the dataset returned images that are not [N, C, H, W]");
  // Training and evaluation run in fp32 whatever the dataset's output dtype.
  return PreparedBatch{buffer.images.to(device, torch::kFloat32), buffer.labels.to(device, torch::kInt64)};
}

Result<torch::Tensor> forward_logits(torch::jit::Module& module, const torch::Tensor& images) {
  PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits, torch_tk::select_output(module.forward({images}), "", "model"));
  if (logits.dim() != 2 || logits.size(0) != images.size(0))
    return Status(ErrorCode::kUnsupported, "the model's forward returns a tensor of shape " +
                                               c10::str(logits.sizes()) + ", not [batch, classes] logits");
  return logits;
}

bool is_cancelled(const TrainHooks& hooks) {
  return hooks.cancelled && hooks.cancelled();
}

Result<EvalResult> evaluate_impl(torch::jit::Module& module, torch_tk::Dataset& data, std::int64_t batch_size,
                                 const TrainHooks& hooks) {
  const auto start = Clock::now();
  const torch::Device device = module_device(module);
  torch::NoGradGuard no_grad;
  module.eval();
  EvalResult result;
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  const std::int64_t size = data.info().size;
  torch_tk::Batch buffer;
  for (std::int64_t begin = 0; begin < size; begin += batch_size) {
    if (is_cancelled(hooks)) return cancelled_status("evaluation");
    std::vector<std::int64_t> indices(std::min(batch_size, size - begin));
    std::iota(indices.begin(), indices.end(), begin);
    PROFAGENT_ASSIGN_OR_RETURN(PreparedBatch batch, read_prepared(data, indices, buffer, device));
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits, forward_logits(module, batch.images));
    loss_sum +=
        torch::nn::functional::cross_entropy(
            logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(batch.labels).sum().item<std::int64_t>();
    result.samples += batch.labels.size(0);
  }
  if (result.samples > 0) {
    result.loss = loss_sum / static_cast<double>(result.samples);
    result.accuracy = static_cast<double>(correct) / static_cast<double>(result.samples);
  }
  result.seconds = seconds_since(start);
  return result;
}

// One optimizer over two parameter groups: weight decay for weights of rank >= 2 (conv kernels,
// linear weights, embeddings) and none for biases and normalization scales, whose decay only
// shrinks them towards a worse model; this matters most for AdamW's large decay.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& parameters,
                                                        const TrainOptions& options) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : parameters) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add_group = [&](std::vector<torch::Tensor> params, double weight_decay) {
    if (params.empty()) return;
    if (options.optimizer == OptimizerKind::kSgd) {
      auto group_options = std::make_unique<torch::optim::SGDOptions>(options.lr);
      group_options->momentum(options.momentum).nesterov(options.nesterov).weight_decay(weight_decay);
      groups.emplace_back(std::move(params), std::move(group_options));
    } else {
      auto group_options = std::make_unique<torch::optim::AdamWOptions>(options.lr);
      group_options->weight_decay(weight_decay);
      groups.emplace_back(std::move(params), std::move(group_options));
    }
  };
  add_group(std::move(decay), options.weight_decay);
  add_group(std::move(no_decay), 0.0);
  if (options.optimizer == OptimizerKind::kSgd) {
    torch::optim::SGDOptions defaults(options.lr);
    defaults.momentum(options.momentum).nesterov(options.nesterov).weight_decay(options.weight_decay);
    return std::make_unique<torch::optim::SGD>(std::move(groups), defaults);
  }
  torch::optim::AdamWOptions defaults(options.lr);
  defaults.weight_decay(options.weight_decay);
  return std::make_unique<torch::optim::AdamW>(std::move(groups), defaults);
}

Status check_options(const TrainOptions& options) {
  if (options.batch_size <= 0) return Status(ErrorCode::kInvalidArgument, "batch_size must be positive");
  if (options.steps <= 0 && options.epochs <= 0)
    return Status(ErrorCode::kInvalidArgument, "epochs or steps must be positive");
  if (options.optimizer == OptimizerKind::kSgd && options.nesterov && options.momentum <= 0.0)
    return Status(ErrorCode::kInvalidArgument, "nesterov needs a positive momentum");
  return Status::ok();
}

Result<TrainResult> train_impl(torch::jit::Module& module, torch_tk::Dataset& train, torch_tk::Dataset* eval,
                               const TrainOptions& options, const TrainHooks& hooks) {
  PROFAGENT_RETURN_IF_ERROR(check_options(options));
  const auto start = Clock::now();
  const std::int64_t available = train.info().size;
  const std::int64_t samples = options.limit > 0 ? std::min(options.limit, available) : available;
  if (samples <= 0) return Status(ErrorCode::kInvalidArgument, "the training dataset is empty");
  const std::int64_t steps_per_epoch = batches_per_pass(samples, options.batch_size);
  const std::int64_t total_steps = options.steps > 0 ? options.steps : options.epochs * steps_per_epoch;
  const std::int64_t epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;
  const LrSchedule schedule = make_lr_schedule(options, steps_per_epoch, total_steps);

  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);
  torch::AutoGradMode grad_mode(true);
  const torch::Device device = module_device(module);

  std::vector<torch::Tensor> parameters;
  for (auto parameter : module.parameters()) {
    // A module cloned with grad mode on holds parameters that are outputs of a clone op, which
    // an optimizer refuses ("can't optimize a non-leaf Tensor"): make them leaves again, in place.
    if (!parameter.is_leaf()) parameter.detach_();
    parameter.requires_grad_(true);
    parameters.push_back(parameter);
  }
  if (parameters.empty()) return Status(ErrorCode::kInvalidArgument, "the model has no parameters to train");
  std::unique_ptr<torch::optim::Optimizer> optimizer = make_optimizer(parameters, options);
  const auto cross_entropy_options =
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing);

  TrainResult result;
  result.train_samples = samples;
  std::vector<std::int64_t> order(samples);
  torch_tk::Batch buffer;
  std::int64_t step = 0;
  for (std::int64_t epoch = 1; epoch <= epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    auto training = phase_if(hooks.phases, "train epoch");
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    module.train(true);
    EpochStats stats;
    stats.epoch = epoch;
    stats.total_epochs = epochs;
    double loss_sum = 0.0;
    std::int64_t correct = 0;
    const std::int64_t epoch_steps = std::min(steps_per_epoch, total_steps - step);
    for (std::int64_t b = 0; b < epoch_steps; ++b, ++step) {
      if (is_cancelled(hooks)) return cancelled_status("training");
      if (hooks.on_batch) hooks.on_batch(b, epoch_steps);
      PROFAGENT_ASSIGN_OR_RETURN(
          PreparedBatch batch,
          read_prepared(train, batch_indices(order, b, options.batch_size), buffer, device));
      if (options.augment == AugmentKind::kFlipCrop) batch.images = flip_crop(batch.images, rng);
      const double lr = schedule.at(step);
      for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);

      optimizer->zero_grad();
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits, forward_logits(module, batch.images));
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, batch.labels, cross_entropy_options);
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value))
        return Status(ErrorCode::kRuntime, "training diverged at step " + std::to_string(step + 1) +
                                               " (loss " + std::to_string(loss_value) + "); try a lower lr");
      loss.backward();
      optimizer->step();

      const std::int64_t n = batch.labels.size(0);
      loss_sum += loss_value * static_cast<double>(n);
      correct += logits.detach().argmax(1).eq(batch.labels).sum().item<std::int64_t>();
      stats.samples += n;
      stats.steps += 1;
      stats.lr = lr;
    }
    if (hooks.on_batch) hooks.on_batch(epoch_steps, epoch_steps);
    if (stats.samples > 0) {
      stats.loss = loss_sum / static_cast<double>(stats.samples);
      stats.train_accuracy = static_cast<double>(correct) / static_cast<double>(stats.samples);
    }
    training.reset();
    if (eval) {
      auto evaluating = phase_if(hooks.phases, "eval");
      PROFAGENT_ASSIGN_OR_RETURN(EvalResult evaluated,
                                 evaluate_impl(module, *eval, options.batch_size, hooks));
      stats.eval_loss = evaluated.loss;
      stats.eval_accuracy = evaluated.accuracy;
    }
    stats.seconds = seconds_since(epoch_start);
    result.epochs.push_back(stats);
    if (hooks.on_epoch) hooks.on_epoch(stats);
  }
  module.eval();
  result.total_steps = step;
  result.seconds = seconds_since(start);
  return result;
}

// How one BatchNorm layer's statistics are re-estimated.
struct BnLayer {
  torch::Tensor running_mean;
  torch::Tensor running_var;
  torch::Tensor num_batches_tracked;  // may be undefined
  std::optional<double> momentum;     // known momentum: exact average by accumulation
  bool native_cumulative = false;     // momentum None: BatchNorm averages cumulatively itself
  torch::Tensor mean_sum;
  torch::Tensor var_sum;
};

std::optional<c10::IValue> momentum_of(const torch::jit::Module& layer) {
  // nn.BatchNorm declares momentum in __constants__, so a scripted layer holds it as a class
  // constant; a module scripted from other code may have it as an attribute. Traced layers have it
  // only inside the graph.
  if (layer.type()->hasConstant("momentum")) return layer.type()->getConstant("momentum");
  if (layer.hasattr("momentum")) return layer.attr("momentum");
  return std::nullopt;
}

std::vector<BnLayer> find_batchnorm_layers(const torch::jit::Module& module) {
  std::vector<BnLayer> layers;
  for (const auto& named : module.named_modules()) {
    const torch::jit::Module& layer = named.value;
    if (!layer.hasattr("running_mean") || !layer.hasattr("running_var")) continue;
    c10::IValue mean = layer.attr("running_mean"), var = layer.attr("running_var");
    if (!mean.isTensor() || !var.isTensor()) continue;  // e.g. InstanceNorm without running stats
    BnLayer bn;
    bn.running_mean = mean.toTensor();
    bn.running_var = var.toTensor();
    if (layer.hasattr("num_batches_tracked") && layer.attr("num_batches_tracked").isTensor())
      bn.num_batches_tracked = layer.attr("num_batches_tracked").toTensor();
    if (auto momentum = momentum_of(layer)) {
      if (momentum->isDouble() && momentum->toDouble() > 0.0)
        bn.momentum = momentum->toDouble();
      else if (momentum->isNone())
        bn.native_cumulative = true;
    }
    layers.push_back(std::move(bn));
  }
  return layers;
}

Result<RecalibrationResult> recalibrate_impl(torch::jit::Module& module, torch_tk::Dataset& data,
                                             const TrainOptions& options, const TrainHooks& hooks) {
  if (options.batch_size <= 0) return Status(ErrorCode::kInvalidArgument, "batch_size must be positive");
  const auto start = Clock::now();
  std::vector<BnLayer> layers = find_batchnorm_layers(module);
  if (layers.empty())
    return Status(ErrorCode::kNotFound,
                  "the model has no BatchNorm layer (no running_mean/running_var) to recalibrate");
  const std::int64_t available = data.info().size;
  const std::int64_t samples = options.limit > 0 ? std::min(options.limit, available) : available;
  if (samples <= 0) return Status(ErrorCode::kInvalidArgument, "the dataset is empty");
  const std::int64_t batches = options.steps > 0 ? options.steps : kDefaultRecalibrationBatches;
  const std::int64_t per_pass = batches_per_pass(samples, options.batch_size);

  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);
  const torch::Device device = module_device(module);
  torch::NoGradGuard no_grad;

  bool any_ema = false, any_cumulative = false;
  for (auto& bn : layers) {
    bn.running_mean.zero_();
    bn.running_var.fill_(1.0);
    if (bn.num_batches_tracked.defined()) bn.num_batches_tracked.zero_();
    if (bn.momentum) {
      bn.mean_sum = torch::zeros_like(bn.running_mean);
      bn.var_sum = torch::zeros_like(bn.running_var);
    }
    (bn.momentum || bn.native_cumulative ? any_cumulative : any_ema) = true;
  }

  module.train(true);
  RecalibrationResult result;
  result.bn_layers = static_cast<std::int64_t>(layers.size());
  std::vector<std::int64_t> order(samples);
  torch_tk::Batch buffer;
  for (std::int64_t done = 0; done < batches; ++done) {
    const std::int64_t b = done % per_pass;
    if (b == 0) {
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
    }
    if (is_cancelled(hooks)) {
      module.eval();
      return cancelled_status("BatchNorm recalibration");
    }
    if (hooks.on_batch) hooks.on_batch(done, batches);
    PROFAGENT_ASSIGN_OR_RETURN(
        PreparedBatch batch,
        read_prepared(data, batch_indices(order, b, options.batch_size), buffer, device));
    // With the running statistics at zero, one train-mode step leaves momentum × (this batch's
    // statistic) in them: divided back out and summed, that is the exact average over all batches
    // (what momentum=None computes), although the momentum itself is a constant we cannot change.
    for (auto& bn : layers) {
      if (!bn.momentum) continue;
      bn.running_mean.zero_();
      bn.running_var.zero_();
    }
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits, forward_logits(module, batch.images));
    (void)logits;
    for (auto& bn : layers) {
      if (!bn.momentum) continue;
      bn.mean_sum.add_(bn.running_mean / *bn.momentum);
      bn.var_sum.add_(bn.running_var / *bn.momentum);
    }
    result.batches += 1;
    result.samples += batch.labels.size(0);
  }
  if (hooks.on_batch) hooks.on_batch(batches, batches);
  for (auto& bn : layers) {
    if (!bn.momentum) continue;
    bn.running_mean.copy_(bn.mean_sum / static_cast<double>(result.batches));
    bn.running_var.copy_(bn.var_sum / static_cast<double>(result.batches));
  }
  module.eval();
  result.method = any_ema ? (any_cumulative ? "mixed" : "ema") : "cumulative";
  result.seconds = seconds_since(start);
  return result;
}

// Every LibTorch failure (a shape error in forward, an optimizer problem) becomes one Status line.
template <class F>
auto guarded(const char* what, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, std::string(what) + " failed: " + torch_tk::torch_error_reason(e));
  }
}

}  // namespace

Json TrainOptions::to_json() const {
  Json json{{"mode", to_string(mode)}, {"batch_size", batch_size}, {"seed", seed}};
  if (limit > 0) json["limit"] = limit;
  if (threads > 0) json["threads"] = threads;
  if (mode == TrainMode::kBnRecalibrate) {
    json["steps"] = steps > 0 ? steps : kDefaultRecalibrationBatches;
    return json;
  }
  json.update(Json{{"optimizer", to_string(optimizer)},
                   {"lr", lr},
                   {"weight_decay", weight_decay},
                   {"schedule", to_string(schedule)},
                   {"warmup_epochs", warmup_epochs},
                   {"label_smoothing", label_smoothing},
                   {"augment", to_string(augment)}});
  if (optimizer == OptimizerKind::kSgd) json.update(Json{{"momentum", momentum}, {"nesterov", nesterov}});
  if (schedule == ScheduleKind::kStep) json.update(Json{{"step_size", step_size}, {"gamma", gamma}});
  if (steps > 0)
    json["steps"] = steps;
  else
    json["epochs"] = epochs;
  return json;
}

double LrSchedule::at(std::int64_t step) const {
  constexpr double kPi = 3.14159265358979323846;
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  switch (kind) {
    case ScheduleKind::kCosine: {
      const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - warmup_steps));
      const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
      return base_lr * 0.5 * (1.0 + std::cos(kPi * progress));
    }
    case ScheduleKind::kStep:
      return base_lr *
             std::pow(gamma, static_cast<double>(step / std::max<std::int64_t>(1, step_size_steps)));
    case ScheduleKind::kConstant:
      return base_lr;
  }
  return base_lr;
}

LrSchedule make_lr_schedule(const TrainOptions& options, std::int64_t steps_per_epoch,
                            std::int64_t total_steps) {
  LrSchedule schedule;
  schedule.kind = options.schedule;
  schedule.base_lr = options.lr;
  schedule.total_steps = std::max<std::int64_t>(1, total_steps);
  // Warmup never takes the whole run: at most all but one step.
  schedule.warmup_steps =
      std::clamp<std::int64_t>(options.warmup_epochs * steps_per_epoch, 0, schedule.total_steps - 1);
  schedule.step_size_steps = std::max<std::int64_t>(1, options.step_size * steps_per_epoch);
  schedule.gamma = options.gamma;
  return schedule;
}

Json EpochStats::to_json() const {
  Json json{{"epoch", epoch},
            {"steps", steps},
            {"samples", samples},
            {"loss", loss},
            {"train_accuracy", train_accuracy},
            {"lr", lr},
            {"seconds", seconds}};
  if (eval_loss) json["eval_loss"] = *eval_loss;
  if (eval_accuracy) json["eval_accuracy"] = *eval_accuracy;
  return json;
}

Json TrainResult::to_json() const {
  Json list = Json::array();
  for (const auto& epoch : epochs) list.push_back(epoch.to_json());
  return Json{{"epochs", std::move(list)},
              {"total_steps", total_steps},
              {"train_samples", train_samples},
              {"seconds", seconds}};
}

Json EvalResult::to_json() const {
  return Json{{"loss", loss}, {"accuracy", accuracy}, {"samples", samples}, {"seconds", seconds}};
}

Json RecalibrationResult::to_json() const {
  return Json{{"batches", batches},
              {"samples", samples},
              {"bn_layers", bn_layers},
              {"method", method},
              {"seconds", seconds}};
}

Result<TrainResult> train_module(torch::jit::Module& module, torch_tk::Dataset& train,
                                 torch_tk::Dataset* eval, const TrainOptions& options,
                                 const TrainHooks& hooks) {
  torch_tk::ThreadsGuard threads(static_cast<int>(options.threads));
  return guarded("training", [&] { return train_impl(module, train, eval, options, hooks); });
}

Result<RecalibrationResult> recalibrate_batchnorm(torch::jit::Module& module, torch_tk::Dataset& data,
                                                  const TrainOptions& options, const TrainHooks& hooks) {
  torch_tk::ThreadsGuard threads(static_cast<int>(options.threads));
  return guarded("BatchNorm recalibration", [&] { return recalibrate_impl(module, data, options, hooks); });
}

Result<EvalResult> evaluate_module(torch::jit::Module& module, torch_tk::Dataset& data,
                                   std::int64_t batch_size, const TrainHooks& hooks) {
  if (batch_size <= 0) return Status(ErrorCode::kInvalidArgument, "batch_size must be positive");
  return guarded("evaluation", [&] { return evaluate_impl(module, data, batch_size, hooks); });
}

namespace {

// An enum member read from a kEnum key: the choices are `values` by name (to_string above) and the
// default is the name of the member's initial value.
template <class E, std::size_t N>
ConfigFieldBuilder enum_field(OptionsSchema<FinetuneOptions>& schema, const std::string& key,
                              E TrainOptions::*member, const E (&values)[N]) {
  std::vector<std::pair<std::string, E>> named;
  std::vector<std::string> choices;
  for (E value : values) {
    named.emplace_back(to_string(value), value);
    choices.emplace_back(to_string(value));
  }
  ConfigFieldBuilder builder = schema.field_with(key, ConfigType::kEnum, [member, named, choices](
                                                                              const Json& value,
                                                                              FinetuneOptions& options) {
    const std::string name = value.get<std::string>();
    for (const auto& [choice, enumerator] : named) {
      if (choice == name) {
        options.*member = enumerator;
        return Status::ok();
      }
    }
    return Status(ErrorCode::kInvalidArgument, "'" + name + "' is not one of " + join(choices, ", "));
  });
  builder.choices(choices).default_value(to_string(FinetuneOptions{}.*member));
  return builder;
}

}  // namespace

const OptionsSchema<FinetuneOptions>& finetune_options_schema() {
  static const OptionsSchema<FinetuneOptions> schema = [] {
    using O = FinetuneOptions;
    OptionsSchema<O> s;
    s.field("dataset", &O::dataset)
        .names_provider(torch_tk::kDatasetInterface)
        .required()
        .describe("the training data: {format: idx|cifar|image_folder, ...that dataset provider's config}");
    s.field("eval_dataset", &O::eval_dataset)
        .names_provider(torch_tk::kDatasetInterface)
        .describe("evaluated after each epoch (and after recalibration): {format: ..., ...}");
    enum_field(s, "mode", &TrainOptions::mode, {TrainMode::kTrain, TrainMode::kBnRecalibrate})
        .describe(
            "train: optimize every parameter; bn_recalibrate: re-estimate BatchNorm running statistics "
            "from `steps` batches (default 100) without changing any weight");
    enum_field(s, "optimizer", &TrainOptions::optimizer, {OptimizerKind::kSgd, OptimizerKind::kAdamW})
        .describe("optimizer");
    s.field("lr", &O::lr).min(0.0).describe("peak learning rate");
    s.field("momentum", &O::momentum).range(0.0, 1.0).describe("SGD momentum");
    s.field("weight_decay", &O::weight_decay)
        .min(0.0)
        .describe("decoupled (AdamW) or L2 (SGD) weight decay, on weights of rank >= 2 only");
    s.field("nesterov", &O::nesterov).describe("Nesterov momentum (SGD)");
    enum_field(s, "schedule", &TrainOptions::schedule,
               {ScheduleKind::kCosine, ScheduleKind::kStep, ScheduleKind::kConstant})
        .describe("learning-rate schedule after warmup, applied every step");
    s.field("step_size", &O::step_size).min(1).describe("step schedule: epochs per decay");
    s.field("gamma", &O::gamma).range(0.0, 1.0).describe("step schedule: decay factor");
    s.field("warmup_epochs", &O::warmup_epochs).min(0).describe("epochs of linear learning-rate warmup");
    s.field("epochs", &O::epochs).min(1).describe("passes over the training data");
    // steps, threads and limit: 0 in TrainOptions means "not given"; the keys have no default.
    s.field_without_default("steps", &O::steps)
        .min(1)
        .describe("train: optimizer steps in all (overrides epochs); bn_recalibrate: batches (default 100)");
    s.field("batch_size", &O::batch_size).min(1).describe("samples per step");
    s.field("seed", &O::seed).min(0).describe("seeds torch::manual_seed, the shuffling order and the augmentation");
    s.field("label_smoothing", &O::label_smoothing).range(0.0, 1.0).describe("cross-entropy label smoothing");
    enum_field(s, "augment", &TrainOptions::augment, {AugmentKind::kNone, AugmentKind::kFlipCrop})
        .describe("flip_crop: random horizontal flip and random crop with padding 2-4 (1/8 of the side)");
    s.field_without_default("threads", &O::threads).min(1).describe("LibTorch intra-op threads while this stage runs");
    s.field_without_default("limit", &O::limit).min(1).describe("use only the first N training samples");
    s.check([](const FinetuneOptions& options) { return check_options(options); });
    return s;
  }();
  return schema;
}

}  // namespace profagent::agents

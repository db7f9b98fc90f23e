#include "evaluator.hpp"

#include <torch/script.h>

#include <chrono>
#include <cmath>
#include <map>

#include "profagent/agent.hpp"
#include "profagent/log.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/profile/static_profile.hpp"
#include "profagent/torch/threads.hpp"

namespace profagent::agents {

namespace fs = std::filesystem;
using namespace torch_tk;

// ---- counters ----

Status AccuracyCounter::add(const torch::Tensor& logits, const torch::Tensor& labels) {
  if (logits.dim() != 2 || labels.dim() != 1 || logits.size(0) != labels.size(0))
    return Status(ErrorCode::kValidation,
                  "accuracy needs logits [N, classes] and labels [N]; the model returned " +
                      shape_text(logits.sizes()) + " for labels " + shape_text(labels.sizes()));
  const std::int64_t k = std::min<std::int64_t>(5, logits.size(1));
  torch::Tensor targets = labels.to(logits.device(), torch::kLong);
  torch::Tensor top = std::get<1>(logits.topk(k, /*dim=*/1));
  top1 += logits.argmax(1).eq(targets).sum().item<std::int64_t>();
  top5 += top.eq(targets.unsqueeze(1)).any(1).sum().item<std::int64_t>();
  samples += logits.size(0);
  return Status::ok();
}

Status AgreementCounter::add(const torch::Tensor& output, const torch::Tensor& reference_output) {
  if (output.sizes() != reference_output.sizes())
    return Status(ErrorCode::kValidation, "the model's output " + shape_text(output.sizes()) +
                                              " and the reference's " + shape_text(reference_output.sizes()) +
                                              " differ in shape, so they cannot be compared");
  torch::Tensor a = output.detach().to(torch::kFloat32);
  torch::Tensor b = reference_output.to(a.device(), torch::kFloat32);
  if (a.numel() > 0) max_abs_diff = std::max(max_abs_diff, (a - b).abs().max().item<double>());
  const std::int64_t n = a.dim() == 0 ? 1 : a.size(0);
  if (a.dim() >= 2) {
    // Per sample for [N, C] logits; per position for dense outputs ([N, C, H, W]: per pixel).
    torch::Tensor same = a.argmax(1).eq(b.argmax(1)).reshape({n, -1}).to(torch::kFloat64).mean(1);
    same_top1 += same.sum().item<double>();
    top1_samples += n;
  }
  samples += n;
  return Status::ok();
}

Json AgreementCounter::to_json() const {
  Json json = Json{{"max_abs_diff", max_abs_diff}, {"samples", samples}};
  if (top1_samples > 0) json["top1"] = same_top1 / static_cast<double>(top1_samples);
  return json;
}

// ---- configuration ----

const OptionsSchema<EvaluationOptions>& evaluation_options_schema() {
  static const OptionsSchema<EvaluationOptions> schema = [] {
    using O = EvaluationOptions;
    OptionsSchema<O> s;
    s.field("dataset", &O::dataset)
        .describe(
            "the dataset to measure accuracy on: {format: idx|cifar|image_folder (a dataset provider id), "
            "...that provider's config}; without it (or with an empty map, e.g. a workflow var set to {}) only "
            "latency, size, MACs, memory and agreement are measured");
    s.field("batch_size", &O::batch_size).min(1).describe("samples per forward on the dataset");
    s.field("limit", &O::limit)
        .min(1)
        .describe("evaluate only the first N samples of the dataset (or N random inputs for agreement without one)");
    s.field("device", &O::device, ConfigType::kEnum)
        .choices({"cpu", "cuda"})
        .describe("where the models run; a model on another device is copied there, the artifact is unchanged");
    s.field("threads", &O::threads)
        .min(1)
        .describe("intra-op threads during the evaluation (at::set_num_threads; restored afterwards); default: "
                  "unchanged");
    s.field("warmup", &O::warmup).min(0).describe("untimed forwards before timing");
    s.field("repeats", &O::repeats).min(1).describe("timed forwards");
    s.field("latency_batch_size", &O::latency_batch_size)
        .min(1)
        .describe("the batch dimension of the input used for latency and peak memory");
    ConfigField dimension;
    dimension.type = ConfigType::kInt;
    dimension.min = 1;
    s.field("input_shape", &O::input_shape)
        .element(dimension)
        .min(1)
        .describe("the model input's shape, batch first (e.g. [1, 3, 224, 224]), when no shapes input is "
                  "connected; default: the dataset's sample shape");
    s.field("measure_latency", &O::measure_latency).describe("time forwards");
    s.field("count_macs", &O::count_macs)
        .describe("count multiply-accumulates of one sample (batch 1) on the traced path: `macs`");
    s.field("output", &O::output)
        .describe("which output of the model's forward is the prediction: a dict key or NamedTuple field, or a "
                  "position (0-based) in a tuple or list; default: a tensor itself, a tuple's first tensor, a "
                  "dict's \"out\", else \"logits\", else its first tensor");
    return s;
  }();
  return schema;
}

// ---- evaluation ----

Result<std::vector<InputSpec>> resolve_input_specs(const EvaluationInputs& inputs,
                                                   const EvaluationOptions& options) {
  torch_tk::InputSources sources;
  sources.shapes = inputs.shapes;
  sources.input_shape = options.input_shape;
  sources.model_metadata = inputs.model_metadata;
  sources.dataset = inputs.dataset;
  return torch_tk::resolve_input_specs(sources, options.latency_batch_size, "latency, memory and agreement");
}

namespace {

Json shapes_json(const std::vector<InputSpec>& specs) {
  Json shapes = Json::array();
  for (const InputSpec& spec : specs)
    shapes.push_back(Json{{"shape", spec.shape}, {"dtype", scalar_type_name(spec.dtype)}});
  return shapes;
}

struct DatasetPass {
  AccuracyCounter accuracy;
  AgreementCounter agreement;
};

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
    indices.clear();
    for (std::int64_t i = b * options.batch_size; i < std::min(count, (b + 1) * options.batch_size); ++i)
      indices.push_back(i);
    Status read = dataset.read_batch(indices, batch);
    if (!read)
      return std::move(read).with_context("reading batch " + std::to_string(b + 1) + " of " +
                                          std::to_string(batches) + " from " + info.source);
    std::vector<torch::Tensor> images{batch.images.to(device)};
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor logits, run_forward(model, images, "model", options.output));
    if (b == 0 && logits.dim() == 2 && info.num_classes > 0 && logits.size(1) != info.num_classes)
      log.warn("the model has {} outputs but the dataset {} has {} classes", logits.size(1), info.source,
               info.num_classes);
    PROFAGENT_RETURN_IF_ERROR(pass.accuracy.add(logits, batch.labels));
    if (reference) {
      PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor expected, run_forward(*reference, images, "reference model", options.output));
      PROFAGENT_RETURN_IF_ERROR(pass.agreement.add(logits, expected));
    }
    if (hooks.progress) hooks.progress(b + 1, batches);
  }
  return pass;
}

Result<AgreementCounter> agreement_on_random_inputs(torch::jit::Module& model, torch::jit::Module& reference,
                                                    const std::vector<InputSpec>& specs,
                                                    const torch::Device& device,
                                                    const EvaluationOptions& options,
                                                    const EvaluationHooks& hooks) {
  const std::int64_t count = options.limit.value_or(options.random_agreement_samples);
  const std::int64_t batches = (count + options.batch_size - 1) / options.batch_size;
  AgreementCounter agreement;
  for (std::int64_t b = 0; b < batches; ++b) {
    if (hooks.cancelled && hooks.cancelled())
      return cancelled_status("evaluation", "after " + std::to_string(b) + " of " + std::to_string(batches) + " batches");
    const std::int64_t size = std::min(options.batch_size, count - b * options.batch_size);
    // A seed per batch (and apart from the latency input's), so any batch can be reproduced alone.
    std::vector<torch::Tensor> inputs =
        make_inputs(specs, size, options.seed + 1 + static_cast<std::uint64_t>(b), device);
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor output, run_forward(model, inputs, "model", options.output));
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor expected, run_forward(reference, inputs, "reference model", options.output));
    PROFAGENT_RETURN_IF_ERROR(agreement.add(output, expected));
    if (hooks.progress) hooks.progress(b + 1, batches);
  }
  return agreement;
}

}  // namespace

namespace {

Result<Json> evaluate_unguarded(const EvaluationInputs& inputs, const EvaluationOptions& options,
                                const EvaluationHooks& hooks) {
  spdlog::logger& log = hooks.log ? *hooks.log : profagent::log();
  if (!inputs.model) return Status(ErrorCode::kInvalidArgument, "no model to evaluate");
  if (options.batch_size < 1 || options.latency_batch_size < 1)
    return Status(ErrorCode::kInvalidArgument, "batch_size and latency_batch_size must be at least 1");
  if (options.device != "cpu" && options.device != "cuda")
    return Status(ErrorCode::kInvalidArgument,
                  "unknown device '" + options.device + "' (expected cpu or cuda)");
  if (options.device == "cuda" && !torch::cuda::is_available())
    return Status(ErrorCode::kUnsupported,
                  std::string("device 'cuda' was requested but CUDA is not available to ") + "LibTorch " +
                      TORCH_VERSION + " here (a CPU-only build, or no GPU)");
  const torch::Device device(options.device == "cuda" ? torch::kCUDA : torch::kCPU);

  // The count is process-wide: the stages after this one must run with the count they were given.
  torch_tk::ThreadsGuard threads(options.threads.value_or(0));
  torch::NoGradGuard no_grad;

  bool copied = false;
  PROFAGENT_ASSIGN_OR_RETURN(torch::jit::Module model,
                             prepare_module(*inputs.model, device, "model", &copied));
  if (copied)
    log.info("evaluating a copy of the model in eval mode on {} (the artifact is unchanged)", device.str());
  std::optional<torch::jit::Module> reference;
  if (inputs.reference) {
    PROFAGENT_ASSIGN_OR_RETURN(reference, prepare_module(*inputs.reference, device, "reference model"));
  }

  Json metrics = Json::object();
  if (inputs.dataset) {
    const torch_tk::DatasetInfo& info = inputs.dataset->info();
    metrics["dataset"] = Json{{"format", info.format},
                              {"source", info.source},
                              {"size", info.size},
                              {"num_classes", info.num_classes}};
    PROFAGENT_ASSIGN_OR_RETURN(DatasetPass pass,
                               evaluate_on_dataset(model, reference ? &*reference : nullptr, *inputs.dataset,
                                                   device, options, hooks, log));
    metrics["samples"] = pass.accuracy.samples;
    metrics["accuracy"] =
        static_cast<double>(pass.accuracy.top1) / static_cast<double>(pass.accuracy.samples);
    metrics["top5"] = static_cast<double>(pass.accuracy.top5) / static_cast<double>(pass.accuracy.samples);
    if (reference) {
      metrics["agreement"] = pass.agreement.to_json();
      metrics["agreement"]["inputs"] = "dataset";
    }
  }

  auto specs = resolve_input_specs(inputs, options);
  const bool needs_specs = options.measure_latency || (reference && !inputs.dataset);
  if (!specs && needs_specs) return std::move(specs).take_status();
  if (!specs) log.info("no input shape (shapes, input_shape or dataset): peak memory is not measured");
  if (specs) {
    metrics["input_shapes"] = shapes_json(specs.value());
    if (reference && !inputs.dataset) {
      PROFAGENT_ASSIGN_OR_RETURN(
          AgreementCounter agreement,
          agreement_on_random_inputs(model, *reference, specs.value(), device, options, hooks));
      metrics["agreement"] = agreement.to_json();
      metrics["agreement"]["inputs"] = "random";
      metrics["agreement"]["seed"] = options.seed + 1;
    }
    std::vector<torch::Tensor> example =
        make_inputs(specs.value(), options.latency_batch_size, options.seed, device);
    if (options.measure_latency) {
      PROFAGENT_ASSIGN_OR_RETURN(LatencyStats latency, measure_latency(model, example, options.warmup,
                                                                       options.repeats, hooks.cancelled));
      metrics["latency_ms"] = latency.to_json();
    } else {
      // The first runs of a TorchScript method profile and specialize its graph: not a steady forward.
      for (int i = 0; i < std::max(options.warmup, 2); ++i) {
        PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor ignored, run_forward(model, example, "model"));
        (void)ignored;
      }
    }
    if (options.count_macs) {
      // MACs per sample (batch 1), counted on the traced path like the profiler's, so a pruned model
      // and its baseline compare. A model whose ops the counter cannot count keeps its other metrics.
      std::vector<torch::jit::IValue> one_sample;
      for (torch::Tensor& input : make_inputs(specs.value(), 1, options.seed, device))
        one_sample.emplace_back(std::move(input));
      auto counted = torch_tk::static_profile(model, one_sample);
      if (counted)
        metrics["macs"] = counted->macs;
      else
        log.warn("MACs not counted: {}", counted.status().message());
    }
    if (hooks.cancelled && hooks.cancelled()) return cancelled_status("evaluation", "before measuring memory");
    auto memory = measure_peak_memory(model, example);
    if (memory) {
      metrics["peak_memory_bytes"] = memory->bytes;
      metrics["peak_memory_method"] = memory->method;
    } else if (memory.status().code() == ErrorCode::kUnsupported) {
      log.warn("peak memory not measured: {}", memory.status().message());
    } else {
      return std::move(memory).take_status();
    }
  }

  PROFAGENT_ASSIGN_OR_RETURN(ModelSize size,
                             model_size(*inputs.model, inputs.model_summary, inputs.work_dir));
  metrics["size_bytes"] = size.bytes;
  metrics["size_source"] = size.source;
  const ParameterStats parameters = parameter_stats(*inputs.model);
  metrics["params"] = parameters.params;
  metrics["param_bytes"] = parameters.param_bytes;
  metrics["buffer_bytes"] = parameters.buffer_bytes;
  metrics["environment"] = environment_info(device);
  return metrics;
}

}  // namespace

Result<Json> evaluate(const EvaluationInputs& inputs, const EvaluationOptions& options,
                      const EvaluationHooks& hooks) {
  // Forwards report their own errors; this catches what the tensor bookkeeping around them may throw
  // (an output of an unexpected dtype, a failed copy to the device), so no exception leaves the stage.
  try {
    return evaluate_unguarded(inputs, options, hooks);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "the evaluation failed: " + torch_error_reason(e));
  }
}

}  // namespace profagent::agents
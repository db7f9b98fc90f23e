#include "evaluator.hpp"

#include <torch/cuda.h>

#include "dataset_pass.hpp"
#include "example_measures.hpp"
#include "profagent/log.hpp"
#include "profagent/profile/packed_weights.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/torch/heap.hpp"
#include "profagent/torch/threads.hpp"
#include "random_agreement.hpp"

namespace profagent::agents {

using namespace torch_tk;

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

Status check_options(const EvaluationOptions& options) {
  if (options.batch_size < 1 || options.latency_batch_size < 1)
    return Status(ErrorCode::kInvalidArgument, "batch_size and latency_batch_size must be at least 1");
  if (options.device != "cpu" && options.device != "cuda")
    return Status(ErrorCode::kInvalidArgument,
                  "unknown device '" + options.device + "' (expected cpu or cuda)");
  if (options.device == "cuda" && !torch::cuda::is_available())
    return Status(ErrorCode::kUnsupported,
                  std::string("device 'cuda' was requested but CUDA is not available to ") + "LibTorch " +
                      TORCH_VERSION + " here (a CPU-only build, or no GPU)");
  return Status::ok();
}

Result<Json> evaluate_unguarded(const EvaluationInputs& inputs, const EvaluationOptions& options,
                                const EvaluationHooks& hooks) {
  spdlog::logger& log = hooks.log ? *hooks.log : profagent::log();
  if (!inputs.model) return Status(ErrorCode::kInvalidArgument, "no model to evaluate");
  PROFAGENT_RETURN_IF_ERROR(check_options(options));
  const torch::Device device(options.device == "cuda" ? torch::kCUDA : torch::kCPU);

  // Freed batches and temporaries stay for the next forward instead of being page-faulted back in,
  // whatever the process freed before (heap.hpp); the profiler's forwards run the same way.
  torch_tk::keep_freed_memory_for_reuse();
  // The count is process-wide: the stages after this one must run with the count they were given.
  torch_tk::ThreadsGuard threads(options.threads.value_or(0));
  torch::NoGradGuard no_grad;

  auto preparing = phase(hooks, "prepare");
  bool copied = false;
  PROFAGENT_ASSIGN_OR_RETURN(torch::jit::Module model, prepare_module(*inputs.model, device, "model", &copied));
  if (copied)
    log.info("evaluating a copy of the model in eval mode on {} (the artifact is unchanged)", device.str());
  std::optional<torch::jit::Module> reference;
  if (inputs.reference) {
    PROFAGENT_ASSIGN_OR_RETURN(reference, prepare_module(*inputs.reference, device, "reference model"));
  }
  preparing.reset();

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
    PROFAGENT_RETURN_IF_ERROR(measure_on_example(model, specs.value(), device, options, hooks, log, metrics));
  }

  auto sizing = phase(hooks, "size and parameters");
  PROFAGENT_ASSIGN_OR_RETURN(ModelSize size, model_size(*inputs.model, inputs.model_summary, inputs.work_dir));
  metrics["size_bytes"] = size.bytes;
  metrics["size_source"] = size.source;
  const ParameterStats parameters = parameter_stats(*inputs.model);
  // A quantized model's weights live in its ops' packed parameters, not in its parameters.
  const torch_tk::PackedWeightTotals packed = torch_tk::packed_weight_totals(*inputs.model);
  metrics["params"] = parameters.params + packed.elements;
  metrics["param_bytes"] = parameters.param_bytes + packed.bytes;
  metrics["param_counting"] = torch_tk::param_counting_text(packed.objects);
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

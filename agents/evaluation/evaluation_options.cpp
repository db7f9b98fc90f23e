#include "evaluation_options.hpp"

#include "profagent/config_schema.hpp"
#include "profagent/torch/dataset.hpp"

namespace profagent::agents {

const OptionsSchema<EvaluationOptions>& evaluation_options_schema() {
  static const OptionsSchema<EvaluationOptions> schema = [] {
    using O = EvaluationOptions;
    OptionsSchema<O> s;
    s.field("dataset", &O::dataset)
        .names_provider(torch_tk::kDatasetInterface)
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
        .describe("threads of every CPU pool during the evaluation (ATen/OpenMP and OpenBLAS; restored afterwards); default: "
                  "unchanged");
    s.field("warmup", &O::warmup).min(0).describe("untimed forwards before timing");
    s.field("repeats", &O::repeats).min(1).describe("timed forwards");
    s.field("latency_batch_size", &O::latency_batch_size)
        .min(1)
        .describe("the batch dimension of the input used for latency and peak memory, and of the forwards that compare "
                  "the model with the reference on random inputs");
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

}  // namespace profagent::agents

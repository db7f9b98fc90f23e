// The acquisition stage: loads the model a workflow names and publishes it, with its provenance, on
// port `model`. The loading itself lives in model_loader.cpp so that it is testable on its own.
#include <memory>
#include <string>

#include "model_loader.hpp"
#include "profagent/options.hpp"
#include "profagent/profagent.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Json;
using profagent::ConfigType;
using profagent::Status;
using profagent::agents::LoadOptions;

// The agent's config: the source and how to load it.
struct AcquisitionOptions : LoadOptions {
  std::string source;  // required
};

// The agent's config: schema, defaults and reading in one declaration.
const profagent::OptionsSchema<AcquisitionOptions>& acquisition_options_schema() {
  static const profagent::OptionsSchema<AcquisitionOptions> schema = [] {
    using O = AcquisitionOptions;
    profagent::OptionsSchema<O> s;
    s.field_without_default("source", &O::source)
        .required()
        .describe(
            "the model to load: a path to a TorchScript .pt file, relative to the current directory, or "
            "torchvision:NAME?key=value&... (e.g. torchvision:resnet50, torchvision:vit_b_16?num_classes=10, "
            "torchvision:resnet18?export=trace&input_shape=1x3x160x160), exported once with random weights "
            "and cached");
    s.field("device", &O::device, ConfigType::kEnum)
        .choices({"cpu", "cuda"})
        .describe("where the model's tensors are loaded; cuda needs a CUDA build of LibTorch and a GPU");
    s.field("eval", &O::eval).describe("switch the model to inference mode (BatchNorm statistics, no Dropout)");
    // python and cache_dir live in LoadOptions::torchvision; empty there means the documented default.
    s.field_with("python", ConfigType::kPath,
                 [](const Json& value, O& options) {
                   options.torchvision.python = value.get<std::string>();
                   return Status::ok();
                 })
        .describe(
            "the Python that exports torchvision sources (needs torch and torchvision); default "
            "$PROFAGENT_PYTHON, else /usr/bin/python3");
    s.field_with("cache_dir", ConfigType::kPath,
                 [](const Json& value, O& options) {
                   options.torchvision.cache_dir = value.get<std::string>();
                   return Status::ok();
                 })
        .describe(
            "where torchvision exports are kept and reused; default "
            "${XDG_CACHE_HOME:-$HOME/.cache}/profagent/torchvision");
    return s;
  }();
  return schema;
}

class AcquisitionAgent : public profagent::Agent {
 public:
  explicit AcquisitionAgent(AcquisitionOptions options)
      : source_(std::move(options.source)), options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    // A torchvision source is exported by Python first (once; later runs load the cached file).
    auto loading =
        context.phase(profagent::agents::source_scheme(source_) == "torchvision" ? "export and load" : "load");
    auto loaded = profagent::agents::load_model(source_, options_);
    loading.stop();
    if (!loaded) return std::move(loaded).take_status();
    const profagent::Json summary = loaded.value()->summary();
    context.log().info("loaded {}: {} parameters, {} bytes, sha256 {}, {:.1f} ms on {}", source_,
                       summary.value("params", 0L), summary.value("size_bytes", 0UL),
                       summary.value("sha256", std::string()).substr(0, 12),
                       summary.value("loaded_in_ms", 0.0), options_.device);
    return context.set_output("model", std::move(loaded).value());
  }

 private:
  std::string source_;
  LoadOptions options_;
};

AgentFactory make_acquisition_factory() {
  AgentFactory factory;
  factory.id = "acquisition";
  factory.role = "acquisition";
  factory.summary =
      "Loads a TorchScript model (scripted or traced), or exports a torchvision model, and records where "
      "it came from.";
  factory.outputs = {{"model", profagent::kinds::kModel,
                      "the TorchScript module with provenance: source, path, sha256, size_bytes, format, "
                      "device, methods, params, loaded_in_ms; for torchvision: torchvision_name, export, "
                      "kwargs, cache_path, cached"}};
  profagent::bind_agent_options<AcquisitionAgent>(factory, acquisition_options_schema());
  return factory;
}

void register_acquisition(profagent::Registrar& registrar) {
  profagent::add_model_artifact_loader(registrar);
  registrar.add_agent(make_acquisition_factory());
}

}  // namespace

PROFAGENT_PLUGIN("acquisition", "0.1.0", register_acquisition);

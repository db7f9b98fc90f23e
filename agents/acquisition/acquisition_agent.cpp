// The acquisition stage: loads the model a workflow names and publishes it, with its provenance, on
// port `model`. The loading itself lives in model_loader.cpp so that it is testable on its own.
#include <memory>
#include <string>

#include "model_loader.hpp"
#include "profagent/profagent.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Config;
using profagent::ConfigType;
using profagent::Result;
using profagent::Status;
using profagent::agents::LoadOptions;

class AcquisitionAgent : public profagent::Agent {
 public:
  AcquisitionAgent(std::string source, LoadOptions options)
      : source_(std::move(source)), options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    auto loaded = profagent::agents::load_model(source_, options_);
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
  factory.config.add("source", ConfigType::kString)
      .required()
      .describe(
          "the model to load: a path to a TorchScript .pt file, relative to the current directory, or "
          "torchvision:NAME?key=value&... (e.g. torchvision:resnet50, torchvision:vit_b_16?num_classes=10, "
          "torchvision:resnet18?export=trace&input_shape=1x3x160x160), exported once with random weights "
          "and cached");
  factory.config.add("device", ConfigType::kEnum)
      .choices({"cpu", "cuda"})
      .default_value("cpu")
      .describe("where the model's tensors are loaded; cuda needs a CUDA build of LibTorch and a GPU");
  factory.config.add("eval", ConfigType::kBool)
      .default_value(true)
      .describe("switch the model to inference mode (BatchNorm statistics, no Dropout)");
  factory.config.add("python", ConfigType::kPath)
      .describe(
          "the Python that exports torchvision sources (needs torch and torchvision); default "
          "$PROFAGENT_PYTHON, else /usr/bin/python3");
  factory.config.add("cache_dir", ConfigType::kPath)
      .describe(
          "where torchvision exports are kept and reused; default "
          "${XDG_CACHE_HOME:-$HOME/.cache}/profagent/torchvision");
  factory.make = [](const Config& config) -> Result<std::unique_ptr<profagent::Agent>> {
    LoadOptions options;
    options.device = config.get_string("device");
    options.eval = config.get_bool("eval");
    if (config.has("python")) options.torchvision.python = config.get_path("python");
    if (config.has("cache_dir")) options.torchvision.cache_dir = config.get_path("cache_dir");
    return std::unique_ptr<profagent::Agent>(
        std::make_unique<AcquisitionAgent>(config.get_string("source"), std::move(options)));
  };
  return factory;
}

void register_acquisition(profagent::Registrar& registrar) {
  registrar.add_agent(make_acquisition_factory());
}

}  // namespace

PROFAGENT_PLUGIN("acquisition", "0.1.0", register_acquisition);

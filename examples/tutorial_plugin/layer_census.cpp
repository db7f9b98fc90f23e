// layer_census: walks the TorchScript module tree of its input model and counts, for each module type
// (the class name without its Python package: Conv2d, Linear, BasicBlock...), how many there are and
// the parameters they own directly; the `top` modules with most parameters are listed by name.
#include "layer_census.hpp"

#include <torch/script.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <profagent/log.hpp>  // context.log(): an spdlog logger
#include <profagent/torch/model_artifact.hpp>

namespace tutorial {
namespace {

using profagent::Json;

// "__torch__.torch.nn.modules.conv.Conv2d" → "Conv2d" (a mangled "...___torch_mangle_3.Conv2d" too).
std::string short_type_name(const torch::jit::Module& module) {
  return module.type()->name() ? module.type()->name()->name() : std::string("?");
}

std::int64_t own_parameter_count(const torch::jit::Module& module) {
  std::int64_t count = 0;
  for (const auto& parameter : module.named_parameters(/*recurse=*/false)) count += parameter.value.numel();
  return count;
}

struct Layer {
  std::string name;
  std::string type;
  std::int64_t params = 0;
};

class LayerCensus : public profagent::Agent {
 public:
  explicit LayerCensus(std::int64_t top) : top_(top) {}

  profagent::Status run(profagent::AgentContext& context) override {
    PROFAGENT_ASSIGN_OR_RETURN(auto model, context.input_as<profagent::ModelArtifact>("model"));

    auto timer = context.phase("count");
    std::vector<Layer> layers;
    const auto modules = model->module().named_modules();
    const long total = static_cast<long>(modules.size());
    long done = 0;
    for (const auto& entry : modules) {
      if (context.cancelled()) return profagent::cancelled_status("layer census", "at module " + std::to_string(done) + " of " + std::to_string(total));
      layers.push_back({entry.name.empty() ? "(root)" : entry.name, short_type_name(entry.value),
                        own_parameter_count(entry.value)});
      context.progress("modules", ++done, total);
    }
    timer.stop();

    struct TypeTotal {
      std::int64_t count = 0;
      std::int64_t params = 0;
    };
    std::map<std::string, TypeTotal> by_type;
    std::int64_t total_params = 0;
    for (const Layer& layer : layers) {
      TypeTotal& total = by_type[layer.type];
      ++total.count;
      total.params += layer.params;
      total_params += layer.params;
    }
    std::stable_sort(layers.begin(), layers.end(), [](const Layer& a, const Layer& b) { return a.params > b.params; });
    Json largest = Json::array();
    for (std::size_t i = 0; i < layers.size() && static_cast<std::int64_t>(i) < top_; ++i)
      largest.push_back({{"name", layers[i].name}, {"type", layers[i].type}, {"params", layers[i].params}});
    Json types = Json::array();
    for (const auto& [type, total] : by_type) types.push_back({{"type", type}, {"count", total.count}, {"params", total.params}});

    context.log().info("{} modules, {} parameters; largest: {}", layers.size(), total_params,
                       layers.empty() ? "-" : layers.front().name);
    Json census{{"modules", layers.size()}, {"params", total_params}, {"by_type", types}, {"largest", largest}};
    return context.set_output("census", std::make_shared<profagent::JsonArtifact>("json", census));
  }

 private:
  std::int64_t top_;
};

}  // namespace

profagent::AgentFactory layer_census_factory() {
  profagent::AgentFactory factory;
  factory.id = "layer_census";
  factory.role = "analysis";
  factory.summary = "Counts a model's modules and parameters per module type, and lists its largest layers.";
  factory.inputs = {{"model", profagent::kinds::kModel, "the model to read"}};
  factory.outputs = {{"census", "json", "{modules, params, by_type: [{type, count, params}], largest: [{name, type, params}]}"}};
  factory.config.add("top", profagent::ConfigType::kInt).default_value(5).range(1, 100).describe("how many of the largest layers to list");
  factory.make = [](const profagent::Config& config) -> profagent::Result<std::unique_ptr<profagent::Agent>> {
    return std::unique_ptr<profagent::Agent>(std::make_unique<LayerCensus>(config.get_int("top")));
  };
  return factory;
}

}  // namespace tutorial

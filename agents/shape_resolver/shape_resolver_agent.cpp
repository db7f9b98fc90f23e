// The shape-resolution stage: finds the input shape(s) of the model on port `model` (workflow →
// metadata stored in the file → probing) and publishes them as a shape_spec on port `spec`. The logic
// lives in shape_resolution.cpp so that it is testable on its own.
#include <memory>
#include <string>

#include "profagent/profagent.hpp"
#include "shape_resolution.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Config;
using profagent::ConfigField;
using profagent::ConfigType;
using profagent::ErrorCode;
using profagent::Result;
using profagent::Status;
using profagent::agents::ShapeResolutionOptions;

class ShapeResolverAgent : public profagent::Agent {
 public:
  explicit ShapeResolverAgent(ShapeResolutionOptions options) : options_(std::move(options)) {}

  Status run(AgentContext& context) override {
    auto model = context.input_as<profagent::ModelArtifact>("model");
    if (!model) return std::move(model).take_status();
    ShapeResolutionOptions options = options_;
    options.cancelled = [&context] { return context.cancelled(); };
    auto resolved = profagent::agents::resolve_input_shapes(*model.value(), options);
    if (!resolved) return std::move(resolved).take_status();
    const auto& resolution = resolved.value();
    std::string shapes;
    for (const auto& shape : resolution.input_shapes)
      shapes += (shapes.empty() ? "" : ", ") + profagent::agents::shape_to_string(shape);
    context.log().info("input shape {} {} (from {}, {} forward run(s))", shapes, resolution.dtype,
                       resolution.source, resolution.tried.size());
    return context.set_output("spec", std::make_shared<profagent::JsonArtifact>(profagent::kinds::kShapeSpec,
                                                                                resolution.to_json()));
  }

 private:
  ShapeResolutionOptions options_;
};

Result<std::vector<profagent::agents::Shape>> shapes_from(const Config& config, const std::string& key) {
  if (!config.has(key)) return std::vector<profagent::agents::Shape>();
  auto parsed = profagent::agents::parse_shape_list(config.get(key), key);
  if (!parsed) return Status(ErrorCode::kValidation, parsed.status().message());
  return parsed;
}

AgentFactory make_shape_resolver_factory() {
  AgentFactory factory;
  factory.id = "shape_resolver";
  factory.role = "shape_resolution";
  factory.summary =
      "Finds the model's input shape(s): from the workflow, from the metadata stored in the model file, "
      "or by probing a short list of candidates with one forward each.";
  factory.inputs = {{"model", profagent::kinds::kModel, "the model whose input shape is wanted"}};
  factory.outputs = {
      {"spec", profagent::kinds::kShapeSpec,
       "{inputs: [{shape, dtype}], source: workflow|metadata|probe, tried: [{shapes, from, ok, "
       "error}], outputs: [{shape, dtype}] when a forward ran}"}};
  factory.config.add("input_shape", ConfigType::kList)
      .describe(
          "the input shape, e.g. [1, 3, 224, 224], or one per input for a multi-input model "
          "([[1, 3, 224, 224], [1, 16]]); when given, neither metadata nor probing is used");
  // No schema default: an unset dtype lets the one stored in the model file apply.
  factory.config.add("dtype", ConfigType::kEnum)
      .choices({"float32", "float16", "bfloat16"})
      .describe("the input dtype; default: the one stored in the model file, else float32");
  ConfigField dimension;
  dimension.type = ConfigType::kInt;
  dimension.min = 1;
  ConfigField shape;
  shape.type = ConfigType::kList;
  shape.min = 1;
  shape.element = std::make_shared<ConfigField>(dimension);
  factory.config.add("candidates", ConfigType::kList)
      .element(shape)
      .describe(
          "the shapes to probe, in order, instead of the built-in list (batch 1; 3x224, 1x28, 3x32, 1x32, "
          "3x28, 3x64, 3x96, 3x256, 3x299, 1x224)");
  factory.config.add("verify", ConfigType::kBool)
      .default_value(true)
      .describe("run one forward with a shape from the workflow or the file before accepting it");
  factory.config.add("use_metadata", ConfigType::kBool)
      .default_value(true)
      .describe("read the input shapes stored in the model file (profagent_meta.json) before probing");
  factory.make = [](const Config& config) -> Result<std::unique_ptr<profagent::Agent>> {
    ShapeResolutionOptions options;
    PROFAGENT_ASSIGN_OR_RETURN(options.input_shapes, shapes_from(config, "input_shape"));
    if (config.has("candidates")) {
      for (const auto& candidate : config.get_list("candidates")) {
        profagent::agents::Shape dims;
        for (const auto& dim : candidate) dims.push_back(dim.get<std::int64_t>());
        options.candidates.push_back(std::move(dims));
      }
    }
    if (config.has("dtype")) options.dtype = config.get_string("dtype");
    options.verify = config.get_bool("verify");
    options.use_metadata = config.get_bool("use_metadata");
    return std::unique_ptr<profagent::Agent>(std::make_unique<ShapeResolverAgent>(std::move(options)));
  };
  return factory;
}

void register_shape_resolver(profagent::Registrar& registrar) {
  registrar.add_agent(make_shape_resolver_factory());
}

}  // namespace

PROFAGENT_PLUGIN("shape_resolver", "0.1.0", register_shape_resolver);

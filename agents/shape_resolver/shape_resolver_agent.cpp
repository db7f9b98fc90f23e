// The shape-resolution stage: finds the input shape(s) of the model on port `model` (workflow →
// metadata stored in the file → probing) and publishes them as a shape_spec on port `spec`. The logic
// lives in shape_resolution.cpp so that it is testable on its own.
#include <memory>
#include <string>

#include "profagent/options.hpp"
#include "profagent/profagent.hpp"
#include "shape_resolution.hpp"

namespace {

using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Json;
using profagent::ConfigField;
using profagent::ConfigType;
using profagent::ErrorCode;
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
    // Reading the stored shapes is instant; the forwards that verify or probe them are what costs.
    auto resolving = context.phase("resolve (verify and probe forwards)");
    auto resolved = profagent::agents::resolve_input_shapes(*model.value(), options);
    resolving.stop();
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

// The agent's config: schema, defaults and reading in one declaration.
const profagent::OptionsSchema<ShapeResolutionOptions>& shape_resolver_options_schema() {
  static const profagent::OptionsSchema<ShapeResolutionOptions> schema = [] {
    using O = ShapeResolutionOptions;
    profagent::OptionsSchema<O> s;
    s.field_with("input_shape", ConfigType::kList,
                 [](const Json& value, O& options) -> Status {
                   auto parsed = profagent::agents::parse_shape_list(value, "input_shape");
                   if (!parsed) return Status(ErrorCode::kValidation, parsed.status().message());
                   options.input_shapes = std::move(parsed).value();
                   return Status::ok();
                 })
        .describe(
            "the input shape, e.g. [1, 3, 224, 224], or one per input for a multi-input model "
            "([[1, 3, 224, 224], [1, 16]]); when given, neither metadata nor probing is used");
    // No schema default: an unset dtype lets the one stored in the model file apply.
    s.field("dtype", &O::dtype, ConfigType::kEnum)
        .choices({"float32", "float16", "bfloat16"})
        .describe("the input dtype; default: the one stored in the model file, else float32");
    ConfigField dimension;
    dimension.type = ConfigType::kInt;
    dimension.min = 1;
    ConfigField shape;
    shape.type = ConfigType::kList;
    shape.min = 1;
    shape.element = std::make_shared<ConfigField>(dimension);
    // Empty candidates mean the built-in list: the key has no default.
    s.field_without_default("candidates", &O::candidates)
        .element(shape)
        .describe(
            "the shapes to probe, in order, instead of the built-in list (batch 1; 3x224, 1x28, 3x32, 1x32, "
            "3x28, 3x64, 3x96, 3x256, 3x299, 1x224)");
    s.field("verify", &O::verify)
        .describe("run one forward with a shape from the workflow or the file before accepting it");
    s.field("use_metadata", &O::use_metadata)
        .describe("read the input shapes stored in the model file (profagent_meta.json) before probing");
    return s;
  }();
  return schema;
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
  profagent::bind_agent_options<ShapeResolverAgent>(factory, shape_resolver_options_schema());
  return factory;
}

void register_shape_resolver(profagent::Registrar& registrar) {
  registrar.add_agent(make_shape_resolver_factory());
}

}  // namespace

PROFAGENT_PLUGIN("shape_resolver", "0.1.0", register_shape_resolver);

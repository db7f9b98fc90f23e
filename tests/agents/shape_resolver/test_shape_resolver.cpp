// Shape resolution on real models: the shipped demo CNN (shape stored in the file), modules built here
// in C++ without metadata (found by probing), the workflow's shape taking precedence, a model that no
// candidate fits, and real torchvision exports (resnet18 scripted and traced, vit_b_16 probed without
// its metadata), then the shape_resolver plugin as the kernel runs it.
#include "torch_doctest.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "model_loader.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "shape_resolution.hpp"
#include "torchvision_source.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::agents::resolve_input_shapes;
using profagent::agents::Shape;
using profagent::agents::ShapeResolution;
using profagent::agents::ShapeResolutionOptions;

using profagent::test::contains;
using profagent::test::TempDir;

namespace {

const fs::path kDemoModel = fs::path(PROFAGENT_SOURCE_DIR) / "examples" / "models" / "demo_cnn.pt";
const fs::path kSharedCache = fs::path(PROFAGENT_TEST_BINARY_DIR) / "torchvision_cache";
const fs::path kPluginFile = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR) / "libshape_resolver.so";

std::shared_ptr<const ModelArtifact> load(const fs::path& file) {
  profagent::agents::LoadOptions options;
  options.torchvision.cache_dir = kSharedCache;
  auto loaded = profagent::agents::load_model(file.string(), options);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  return loaded.value();
}

std::shared_ptr<const ModelArtifact> load_source(const std::string& source) {
  return load(source);
}

// conv 3→4 (3x3, padding 1), then flatten → linear over 4*32*32 features: only 3x32x32 runs.
torch::jit::Module make_cifar_module(std::int64_t channels = 3) {
  torch::jit::Module module("Cifar");
  module.register_attribute("training", c10::BoolType::get(), false);
  module.register_parameter("conv_w", torch::randn({4, channels, 3, 3}), false);
  module.register_parameter("fc_w", torch::randn({10, 4 * 32 * 32}) / 64, false);
  module.define(
      "def forward(self, x):\n"
      "  y = torch.conv2d(x, self.conv_w, None, [1, 1], [1, 1])\n"
      "  return torch.linear(torch.flatten(torch.relu(y), 1), self.fc_w)\n");
  return module;
}

fs::path save(torch::jit::Module module, const fs::path& dir, const std::string& name) {
  fs::path path = dir / name;
  module.save(path.string());
  return path;
}

ShapeResolution resolve_ok(const ModelArtifact& model, const ShapeResolutionOptions& options = {}) {
  auto resolved = resolve_input_shapes(model, options);
  REQUIRE_MESSAGE(resolved.is_ok(), resolved.status().to_string());
  return resolved.value();
}

profagent::Status resolve_error(const ModelArtifact& model, const ShapeResolutionOptions& options = {}) {
  auto resolved = resolve_input_shapes(model, options);
  REQUIRE_FALSE(resolved.is_ok());
  return resolved.status();
}

std::vector<std::string> tried_shapes(const ShapeResolution& resolution) {
  std::vector<std::string> shapes;
  for (const Json& entry : resolution.tried) {
    std::string text;
    for (const Json& shape : entry["shapes"]) {
      Shape dims = shape.get<Shape>();
      text += (text.empty() ? "" : "+") + profagent::agents::shape_to_string(dims);
    }
    shapes.push_back(text + (entry["ok"].get<bool>() ? " ok" : " failed"));
  }
  return shapes;
}

ShapeResolutionOptions without_metadata() {
  ShapeResolutionOptions options;
  options.use_metadata = false;
  return options;
}

}  // namespace

TEST_CASE(
    "the demo CNN's input shape comes from the metadata stored in its file and is verified by one forward") {
  auto model = load(kDemoModel);
  ShapeResolution resolution = resolve_ok(*model);
  CHECK(resolution.source == "metadata");
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 1, 28, 28}});
  CHECK(resolution.dtype == "float32");
  CHECK(tried_shapes(resolution) == std::vector<std::string>{"1x1x28x28 ok"});
  CHECK(resolution.tried[0]["from"] == "metadata");

  Json spec = resolution.to_json();
  CHECK(spec["inputs"] == Json::parse(R"([{"shape": [1, 1, 28, 28], "dtype": "float32"}])"));
  CHECK(spec["source"] == "metadata");
  CHECK(spec["outputs"] == Json::parse(R"([{"shape": [1, 10], "dtype": "Float"}])"));

  ShapeResolutionOptions unverified;
  unverified.verify = false;
  ShapeResolution trusted = resolve_ok(*model, unverified);
  CHECK(trusted.source == "metadata");
  CHECK(trusted.tried.empty());
  CHECK_FALSE(trusted.to_json().contains("outputs"));
}

TEST_CASE(
    "without its metadata the demo CNN is found by probing as 1x1x28x28 after 3x224 fails on its channels") {
  ShapeResolution resolution = resolve_ok(*load(kDemoModel), without_metadata());
  CHECK(resolution.source == "probe");
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 1, 28, 28}});
  CHECK(tried_shapes(resolution) == std::vector<std::string>{"1x3x224x224 failed", "1x1x28x28 ok"});
  std::string error = resolution.tried[0]["error"];
  CHECK(contains(error, "to have 1 channels, but got 3 channels instead"));
  CHECK_FALSE(contains(error, "\n"));
}

TEST_CASE("a module built in C++ without metadata is probed until 3x32x32 fits its flatten-linear head") {
  TempDir dir;
  auto model = load(save(make_cifar_module(), dir.path(), "cifar.pt"));
  CHECK(
      profagent::agents::read_model_metadata(model->summary()["path"].get<std::string>()).value().is_null());

  ShapeResolution resolution = resolve_ok(*model);  // metadata allowed, but the file has none
  CHECK(resolution.source == "probe");
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 3, 32, 32}});
  CHECK(tried_shapes(resolution) ==
        std::vector<std::string>{"1x3x224x224 failed", "1x1x28x28 failed", "1x3x32x32 ok"});
  CHECK(contains(resolution.tried[0]["error"].get<std::string>(), "shapes cannot be multiplied"));
  CHECK(resolution.to_json()["outputs"][0]["shape"] == Json::array({1, 10}));
}

TEST_CASE("a model artifact with no file behind it is probed too") {
  auto module = std::make_shared<torch::jit::Module>(make_cifar_module());
  ModelArtifact model(module, Json{{"source", "made in memory"}});
  ShapeResolution resolution = resolve_ok(model);
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 3, 32, 32}});
}

TEST_CASE("the workflow's input_shape takes precedence over the stored metadata and must run") {
  auto model = load(kDemoModel);
  ShapeResolutionOptions options;
  options.input_shapes = {{1, 1, 32, 32}};  // the pooled demo CNN runs at 32 too; metadata says 28
  ShapeResolution resolution = resolve_ok(*model, options);
  CHECK(resolution.source == "workflow");
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 1, 32, 32}});
  CHECK(tried_shapes(resolution) == std::vector<std::string>{"1x1x32x32 ok"});

  options.input_shapes = {{1, 3, 28, 28}};
  profagent::Status wrong = resolve_error(*model, options);
  CHECK(wrong.code() == ErrorCode::kInvalidArgument);
  CHECK(contains(wrong.message(), "the workflow's input_shape 1x3x28x28 (float32) does not run through " +
                                      kDemoModel.string() + ": "));
  CHECK(contains(wrong.message(), "to have 1 channels, but got 3 channels instead"));

  options.verify = false;  // taken on trust
  ShapeResolution trusted = resolve_ok(*model, options);
  CHECK(trusted.source == "workflow");
  CHECK(trusted.input_shapes == std::vector<Shape>{{1, 3, 28, 28}});
  CHECK(trusted.tried.empty());
}

TEST_CASE(
    "a model that fits no candidate is an error listing every shape tried and the first failure's reason") {
  TempDir dir;
  auto model = load(save(make_cifar_module(5), dir.path(), "five_channels.pt"));
  profagent::Status status = resolve_error(*model);
  CHECK(status.code() == ErrorCode::kValidation);
  CHECK(contains(status.message(),
                 "no candidate input shape runs through " + model->summary()["path"].get<std::string>() +
                     " (float32); tried 10: 1x3x224x224, 1x1x28x28, 1x3x32x32, 1x1x32x32, 1x3x28x28, "
                     "1x3x64x64, 1x3x96x96, 1x3x256x256, 1x3x299x299, 1x1x224x224; the first failed with: "));
  CHECK(contains(status.message(), "expected input[1, 3, 224, 224] to have 5 channels, but got 3 channels"));
  CHECK(contains(status.message(), "Give the shape in the workflow (input_shape: [1, C, H, W])"));
  CHECK_FALSE(contains(status.message(), "\n"));

  // A candidate list of one's own finds it.
  ShapeResolutionOptions options;
  options.candidates = {{1, 3, 32, 32}, {1, 5, 32, 32}};
  ShapeResolution resolution = resolve_ok(*model, options);
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 5, 32, 32}});
  CHECK(tried_shapes(resolution) == std::vector<std::string>{"1x3x32x32 failed", "1x5x32x32 ok"});
}

TEST_CASE("a two-input model takes one shape per input from the workflow and is not probed") {
  torch::jit::Module module("TwoInputs");
  module.register_attribute("training", c10::BoolType::get(), false);
  module.register_parameter("w", torch::randn({3, 4}), false);
  module.define("def forward(self, x, y):\n  return torch.linear(x, self.w) + y\n");
  ModelArtifact model(std::make_shared<torch::jit::Module>(module), Json::object());

  profagent::Status probing = resolve_error(model);
  CHECK(probing.code() == ErrorCode::kUnsupported);
  CHECK(contains(probing.message(), "its forward() takes 2 required inputs; give them in the workflow"));

  ShapeResolutionOptions options;
  options.input_shapes = {{2, 4}, {2, 3}};
  ShapeResolution resolution = resolve_ok(model, options);
  CHECK(resolution.to_json()["inputs"] ==
        Json::parse(R"([{"shape": [2, 4], "dtype": "float32"}, {"shape": [2, 3], "dtype": "float32"}])"));

  options.input_shapes = {{2, 4}};
  profagent::Status one = resolve_error(model, options);
  CHECK(one.code() == ErrorCode::kInvalidArgument);
  CHECK(contains(one.message(), "gives 1 input shape(s) (2x4) but forward() takes 2 input(s) (x, y)"));
}

TEST_CASE("a model still in training mode is probed through an eval-mode copy and is left unchanged") {
  // The demo CNN was saved in eval mode; this copy is switched to training as `eval: false` would keep it.
  auto module_ptr = std::make_shared<torch::jit::Module>(torch::jit::load(kDemoModel.string()));
  module_ptr->train();
  auto model = std::make_shared<ModelArtifact>(module_ptr, Json{{"path", kDemoModel.string()}});
  torch::jit::Module module = model->module();
  REQUIRE(module.is_training());
  torch::Tensor running_mean = module.attr("bn1").toModule().attr("running_mean").toTensor().clone();

  ShapeResolution resolution = resolve_ok(*model, without_metadata());
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 1, 28, 28}});
  CHECK(module.is_training());
  CHECK(torch::equal(module.attr("bn1").toModule().attr("running_mean").toTensor(), running_mean));
}

TEST_CASE(
    "a bfloat16 model is probed with the bfloat16 inputs the workflow asks for, and float32 inputs fail") {
  torch::jit::Module module("Linear");
  module.register_attribute("training", c10::BoolType::get(), false);
  module.register_parameter("w", torch::randn({2, 3 * 32 * 32}), false);
  module.define("def forward(self, x):\n  return torch.linear(torch.flatten(x, 1), self.w)\n");
  module.to(torch::kBFloat16);
  ModelArtifact model(std::make_shared<torch::jit::Module>(module), Json::object());

  ShapeResolutionOptions options;
  options.dtype = "bfloat16";
  ShapeResolution resolution = resolve_ok(model, options);
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 3, 32, 32}});
  CHECK(resolution.to_json()["inputs"][0]["dtype"] == "bfloat16");
  CHECK(resolution.to_json()["outputs"][0]["dtype"] == "BFloat16");

  // float32 inputs do not run through bfloat16 weights: every candidate fails.
  CHECK(resolve_error(model).code() == ErrorCode::kValidation);

  options.dtype = "float64";
  CHECK(resolve_error(model, options).message() ==
        "unknown dtype 'float64' (expected float32, float16 or bfloat16)");
}

TEST_CASE("shape lists parse as one shape or one per input, with positive integer dimensions") {
  using profagent::agents::parse_shape_list;
  CHECK(parse_shape_list(Json::parse("[1, 3, 224, 224]"), "input_shape").value() ==
        std::vector<Shape>{{1, 3, 224, 224}});
  CHECK(parse_shape_list(Json::parse("[[1, 3, 224, 224], [1, 16]]"), "input_shape").value() ==
        std::vector<Shape>{{1, 3, 224, 224}, {1, 16}});
  for (const char* bad : {"[]", "[0, 3]", "[1.5, 2]", "\"1x3x224x224\"", "[[1, 2], 3]", "[[]]", "[-1, 4]"}) {
    CAPTURE(bad);
    auto parsed = parse_shape_list(Json::parse(bad), "input_shape");
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.status().code() == ErrorCode::kInvalidArgument);
    CHECK(parsed.status().message().rfind("input_shape ", 0) == 0);
  }
}

TEST_CASE("stored metadata is read from the archive, absent metadata is null and a non-archive is an error") {
  Json meta = profagent::agents::read_model_metadata(kDemoModel.string()).value();
  CHECK(meta["input_shapes"] == Json::parse("[[1, 1, 28, 28]]"));
  TempDir dir;
  fs::path text = dir.path() / "notes.pt";
  std::ofstream(text) << "not a model";
  auto bad = profagent::agents::read_model_metadata(text.string());
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == ErrorCode::kParseError);
  CHECK(contains(bad.status().message(), "cannot read the metadata of " + text.string()));
}

TEST_CASE("torchvision resnet18 scripted and traced resolve to 1x3x224x224 from metadata and by probing") {
  for (const std::string source : {"torchvision:resnet18", "torchvision:resnet18?export=trace"}) {
    CAPTURE(source);
    auto model = load_source(source);
    ShapeResolution stored = resolve_ok(*model);
    CHECK(stored.source == "metadata");
    CHECK(stored.input_shapes == std::vector<Shape>{{1, 3, 224, 224}});
    ShapeResolution probed = resolve_ok(*model, without_metadata());
    CHECK(probed.source == "probe");
    CHECK(probed.input_shapes == std::vector<Shape>{{1, 3, 224, 224}});
    CHECK(probed.tried.size() == 1);
    CHECK(probed.to_json()["outputs"][0]["shape"] == Json::array({1, 1000}));
  }
}

TEST_CASE("torchvision vit_b_16 exported without metadata is found as 1x3x224x224 by probing") {
  profagent::agents::TorchvisionRequest request;
  request.name = "vit_b_16";
  request.metadata = false;
  profagent::agents::TorchvisionOptions options;
  options.cache_dir = kSharedCache;
  auto exported = profagent::agents::export_torchvision(request, "torchvision:vit_b_16", options);
  REQUIRE_MESSAGE(exported.is_ok(), exported.status().to_string());
  auto model = load(exported.value().path);
  CHECK(profagent::agents::read_model_metadata(exported.value().path.string()).value().is_null());

  ShapeResolution resolution = resolve_ok(*model);
  CHECK(resolution.source == "probe");
  CHECK(resolution.input_shapes == std::vector<Shape>{{1, 3, 224, 224}});
  CHECK(tried_shapes(resolution) == std::vector<std::string>{"1x3x224x224 ok"});
  CHECK(resolution.to_json()["outputs"][0]["shape"] == Json::array({1, 1000}));

  // Its position embedding fixes the size: anything else fails, with the reason.
  ShapeResolutionOptions other;
  other.candidates = {{1, 3, 256, 256}};
  profagent::Status status = resolve_error(*model, other);
  CHECK(contains(status.message(), "tried 1: 1x3x256x256; the first failed with: "));
  CHECK(contains(status.message(), "Wrong image height! Expected 224 but got 256!"));
}

// ---- the plugin, as the kernel runs it ----

namespace {

class ShapeContext : public profagent::testing::FakeAgentContext {
 public:
  ShapeContext(profagent::Config config, profagent::ArtifactPtr model)
      : FakeAgentContext(std::move(config), "shapes") {
    with_input("model", std::move(model));
  }
};

}  // namespace

TEST_CASE("the shape_resolver plugin declares its ports and schema and publishes a shape_spec") {
  REQUIRE_MESSAGE(fs::exists(kPluginFile),
                  ("build the 'shape_resolver' target first: " + kPluginFile.string()));
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  const auto& record = manager.load_file(kPluginFile.string());
  REQUIRE_MESSAGE(record.loaded, record.refusal);
  CHECK(record.id == "shape_resolver");
  const profagent::AgentFactory* factory = registry.find_agent("shape_resolver");
  REQUIRE(factory != nullptr);
  CHECK(factory->role == "shape_resolution");
  REQUIRE(factory->find_input("model") != nullptr);
  CHECK(factory->find_input("model")->kind == "model");
  REQUIRE(factory->find_output("spec") != nullptr);
  CHECK(factory->find_output("spec")->kind == "shape_spec");

  auto defaults = factory->config.resolve(Json::object());
  REQUIRE(defaults.is_ok());
  CHECK(defaults.value().get_bool("verify") == true);
  CHECK(defaults.value().get_bool("use_metadata") == true);
  CHECK_FALSE(defaults.value().has("dtype"));
  CHECK_FALSE(factory->config.resolve(Json{{"dtype", "int8"}}).is_ok());
  CHECK_FALSE(factory->config.resolve(Json{{"candidates", Json::parse("[[1, 0, 28, 28]]")}}).is_ok());
  CHECK_FALSE(factory->config.resolve(Json{{"shape", Json::parse("[1, 3]")}}).is_ok());

  // A malformed input_shape is refused when the agent is made, before anything runs.
  auto bad_shape = factory->config.resolve(Json{{"input_shape", Json::parse("[1, -3, 28, 28]")}});
  REQUIRE(bad_shape.is_ok());
  auto refused = factory->make(bad_shape.value());
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == ErrorCode::kValidation);
  CHECK(contains(refused.status().message(), "dimension -3 is not a positive integer"));

  auto config = factory->config.resolve(
      Json{{"use_metadata", false}, {"candidates", Json::parse("[[1, 3, 28, 28], [1, 1, 28, 28]]")}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto agent = factory->make(config.value());
  REQUIRE(agent.is_ok());
  ShapeContext context(config.value(), load(kDemoModel));
  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  REQUIRE(context.outputs().count("spec") == 1);
  const auto& spec = context.outputs().at("spec");
  CHECK(spec->kind() == "shape_spec");
  CHECK(spec->summary()["inputs"] == Json::parse(R"([{"shape": [1, 1, 28, 28], "dtype": "float32"}])"));
  CHECK(spec->summary()["source"] == "probe");
  CHECK(spec->summary()["tried"].size() == 2);

  auto workflow = factory->config.resolve(Json{{"input_shape", Json::parse("[[1, 1, 64, 64]]")}});
  REQUIRE(workflow.is_ok());
  ShapeContext given(workflow.value(), load(kDemoModel));
  REQUIRE(factory->make(workflow.value()).value()->run(given).is_ok());
  CHECK(given.outputs().at("spec")->summary()["source"] == "workflow");
  CHECK(given.outputs().at("spec")->summary()["inputs"][0]["shape"] == Json::array({1, 1, 64, 64}));
}

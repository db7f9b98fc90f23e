// The pruning stage without the kernel: the real pruning plugin and importance providers (loaded from
// the build's plugin directory) on the fixture ResNet and ViT trained on Fashion-MNIST; plans, a plan
// layer that matches nothing, a MAC target, Taylor's calibration, and a history that replays to the
// same model. (The ViT's prunable groups are its MLP hidden units.)
#include "torch_doctest.hpp"

#include <filesystem>
#include <memory>
#include <string>

#include "plan.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "pruner.hpp"
#include "shape_resolution.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ArtifactPtr;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Status;
using profagent::test::contains;
using profagent::test::TestAgentContext;

namespace {

const fs::path kModels = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "models";
const fs::path kResnet = kModels / "resnet_fmnist.pt";
const fs::path kVit = kModels / "vit_fmnist.pt";
const std::string kMlp1 = "encoder.layers.encoder_layer_1.mlp.0";  // the ViT's second MLP: 128 hidden units
const std::string kMlp3 = "encoder.layers.encoder_layer_3.mlp.0";
const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

struct Plugins {
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager{registry};
  Plugins() {
    manager.add_search_path(PROFAGENT_PLUGIN_OUTPUT_DIR);
    manager.load_all();
  }
};

Plugins& plugins() {
  static Plugins instance;
  return instance;
}

// A fixture as the acquisition agent gives it: the module, its path, the metadata stored in the file.
ArtifactPtr fixture(const fs::path& path) {
  auto module = std::make_shared<torch::jit::Module>(torch::jit::load(path.string()));
  auto metadata = profagent::agents::read_model_metadata(path.string());
  REQUIRE(metadata.is_ok());
  return std::make_shared<ModelArtifact>(module, Json{{"source", path.string()}, {"path", path.string()}},
                                         metadata.value());
}
ArtifactPtr fixture_resnet() { return fixture(kResnet); }
ArtifactPtr fixture_vit() { return fixture(kVit); }

struct Stage {
  std::unique_ptr<TestAgentContext> context;
  Status status;
  std::shared_ptr<const ModelArtifact> model() const {
    return std::dynamic_pointer_cast<const ModelArtifact>(context->outputs().at("model"));
  }
  Json history() const { return context->outputs().at("history")->summary(); }
};

Stage run_pruning_stage(const Json& with, std::map<std::string, ArtifactPtr> inputs) {
  const profagent::AgentFactory* factory = plugins().registry.find_agent("pruning");
  REQUIRE_MESSAGE(factory != nullptr, "build the pruning plugin first (in " PROFAGENT_PLUGIN_OUTPUT_DIR ")");
  auto config = factory->config.resolve(with);
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto agent = factory->make(config.value());
  REQUIRE_MESSAGE(agent.is_ok(), agent.status().to_string());
  Stage stage;
  stage.context = std::make_unique<TestAgentContext>(config.value(), "prune", std::move(inputs), &plugins().registry);
  stage.status = agent.value()->run(*stage.context);
  return stage;
}

ArtifactPtr plan_artifact(const Json& plan) {
  return std::make_shared<profagent::JsonArtifact>(profagent::kinds::kPlan, plan);
}

torch::Tensor logits(const ModelArtifact& model, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  auto module = model.module();
  return module.forward({input}).toTensor();
}

const Json* group_named(const Json& history, const std::string& name) {
  for (const Json& group : history["groups"])
    if (group["name"] == name) return &group;
  return nullptr;
}

}  // namespace

TEST_CASE("pruning 30% of the fixture ResNet's channels gives a smaller model that still classifies") {
  Stage stage = run_pruning_stage({{"ratio", 0.3}}, {{"model", fixture_resnet()}});
  REQUIRE_MESSAGE(stage.status.is_ok(), stage.status.to_string());
  const Json history = stage.history();
  CHECK(stage.context->outputs().at("history")->kind() == "prune_history");
  CHECK(history["format"] == "profagent.prune_history");
  CHECK(history["mode"] == "ratio");
  const Json& result = history["result"];
  CHECK(result["params_after"].get<long>() < result["params_before"].get<long>());
  CHECK(result["macs_after"].get<long>() < result["macs_before"].get<long>());
  CHECK(result["pruned_groups"].get<long>() > 0);
  // The stem reads the model input and is left alone by default.
  const Json* stem = group_named(history, "conv1");
  CHECK((stem == nullptr || (*stem)["removed"].empty()));
  // The input shape came from the file's metadata, and the metadata travels on with the pruning noted.
  auto model = stage.model();
  CHECK(model->metadata()["input_shapes"] == Json::array({Json::array({1, 1, 28, 28})}));
  CHECK(model->metadata()["pruning"]["criterion"] == "l1");
  CHECK(logits(*model, torch::randn({4, 1, 28, 28})).sizes().vec() == std::vector<std::int64_t>{4, 10});
  CHECK(stage.context->progress_count("group") > 0);
}

TEST_CASE("a plan prunes the layers it names by their own ratios and nothing else when its global ratio is 0") {
  Json plan = {{"pruning", {{"global_ratio", 0.0},
                            {"layers", {{kMlp1, 0.5}, {kMlp3, {{"ratio", 0.25}, {"reason", "cheap"}}}}}}}};
  Stage stage = run_pruning_stage({{"ratio", 0.4}}, {{"model", fixture_vit()}, {"plan", plan_artifact(plan)}});
  REQUIRE_MESSAGE(stage.status.is_ok(), stage.status.to_string());
  const Json history = stage.history();
  CHECK(history["mode"] == "plan");
  long pruned = 0;
  for (const Json& group : history["groups"]) pruned += group["removed"].empty() ? 0 : 1;
  CHECK(pruned == 2);
  const Json* first = group_named(history, kMlp1);
  REQUIRE(first != nullptr);
  CHECK((*first)["removed"].size() == 64);  // half of 128
  const Json* second = group_named(history, kMlp3);
  REQUIRE(second != nullptr);
  CHECK((*second)["removed"].size() == 32);  // a quarter of 128
  auto model = stage.model();
  CHECK(logits(*model, torch::randn({2, 3, 28, 28})).sizes().vec() == std::vector<std::int64_t>{2, 10});
}

TEST_CASE("a plan layer that matches no layer fails naming it, the closest layer and the model file") {
  Json plan = {{"pruning", {{"layers", {{"encoder.layers.encoder_layer_1.mlp0", 0.3}}}}}};
  Stage stage = run_pruning_stage({}, {{"model", fixture_vit()}, {"plan", plan_artifact(plan)}});
  REQUIRE_FALSE(stage.status.is_ok());
  const std::string message = stage.status.to_string();
  CHECK(contains(message, "'encoder.layers.encoder_layer_1.mlp0'"));
  CHECK(contains(message, "did you mean '" + kMlp1 + "'"));
  CHECK(contains(message, kVit.string()));
  CHECK(stage.context->outputs().empty());
}

TEST_CASE("plans are read strictly: ratios from 0 up to but not including 1, known keys, and a plan without a pruning section") {
  using profagent::agents::parse_pruning_plan;
  CHECK_FALSE(parse_pruning_plan({{"quantization", {{"layers", Json::object()}}}}).value().has_value());
  auto bad_ratio = parse_pruning_plan({{"pruning", {{"layers", {{"fc", 1.0}}}}}});
  REQUIRE_FALSE(bad_ratio.is_ok());
  CHECK(contains(bad_ratio.status().message(), "pruning.layers['fc']"));
  auto typo = parse_pruning_plan({{"pruning", {{"layer", Json::object()}}}});
  REQUIRE_FALSE(typo.is_ok());
  CHECK(contains(typo.status().message(), "did you mean 'layers'"));
  auto good = parse_pruning_plan({{"pruning", {{"global_ratio", 0.1}, {"ignored_layers", {"fc"}}}}});
  REQUIRE(good.is_ok());
  CHECK(*good.value()->global_ratio == doctest::Approx(0.1));
}

TEST_CASE("the history output replayed on the original model rebuilds the same pruned model") {
  auto original = fixture_vit();
  Stage first = run_pruning_stage({{"ratio", 0.35}, {"criterion", "l2"}, {"round_to", 8}}, {{"model", original}});
  REQUIRE_MESSAGE(first.status.is_ok(), first.status.to_string());
  auto history = std::make_shared<profagent::JsonArtifact>("prune_history", first.history());
  Stage replay = run_pruning_stage({}, {{"model", original}, {"history", history}});
  REQUIRE_MESSAGE(replay.status.is_ok(), replay.status.to_string());
  CHECK(replay.history()["mode"] == "replay");
  CHECK(replay.history()["groups"] == first.history()["groups"]);
  auto a = first.model()->module().named_parameters();
  auto b = replay.model()->module().named_parameters();
  REQUIRE(a.size() == b.size());
  for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y) {
    CHECK((*x).name == (*y).name);
    CHECK(torch::equal((*x).value, (*y).value));
  }
  torch::manual_seed(3);
  const torch::Tensor input = torch::randn({2, 3, 28, 28});
  CHECK(torch::equal(logits(*first.model(), input), logits(*replay.model(), input)));
}

TEST_CASE("a MAC target searches the global ratio and removes at least that share of the MACs") {
  Stage stage = run_pruning_stage({{"macs_reduction", 0.2}}, {{"model", fixture_vit()}});
  REQUIRE_MESSAGE(stage.status.is_ok(), stage.status.to_string());
  const Json history = stage.history();
  CHECK(history["mode"] == "macs_target");
  const double achieved = history["search"]["achieved"].get<double>();
  CHECK(achieved >= 0.2 - 0.005);
  CHECK(achieved < 0.25);
  const Json& result = history["result"];
  CHECK(achieved == doctest::Approx(1.0 - result["macs_after"].get<double>() / result["macs_before"].get<double>()));
  // The estimate is exact for linear layers (and convolutions): one round, no correction.
  CHECK(history["search"]["rounds"].size() == 1);
  CHECK(history["search"]["rounds"][0]["estimated_reduction"].get<double>() == doctest::Approx(achieved));
}

TEST_CASE("Taylor importance needs a calibration set, and ranks with gradients from one") {
  Stage without = run_pruning_stage({{"criterion", "taylor"}}, {{"model", fixture_vit()}});
  REQUIRE_FALSE(without.status.is_ok());
  CHECK(contains(without.status.to_string(), "calibration"));

  Json calibration = {{"format", "idx"},
                      {"images", (kFashionMnist / "train-images-idx3-ubyte.gz").string()},
                      {"labels", (kFashionMnist / "train-labels-idx1-ubyte.gz").string()},
                      {"channels", 3},
                      {"mean", {0.2860, 0.2860, 0.2860}},
                      {"std", {0.3530, 0.3530, 0.3530}}};
  Stage with = run_pruning_stage(
      {{"criterion", "taylor"}, {"ratio", 0.3}, {"calibration", calibration}, {"calibration_samples", 64}},
      {{"model", fixture_vit()}});
  REQUIRE_MESSAGE(with.status.is_ok(), with.status.to_string());
  CHECK(with.history()["options"]["criterion"] == "taylor");
  CHECK(with.context->progress_count("calibration batch") == 2);
  // A different ranking from L1 on at least one group.
  Stage l1 = run_pruning_stage({{"ratio", 0.3}}, {{"model", fixture_vit()}});
  REQUIRE(l1.status.is_ok());
  CHECK(l1.history()["groups"] != with.history()["groups"]);
}

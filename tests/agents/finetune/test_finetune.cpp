// The finetune stage: the trainer library trains the shipped demo CNN on real Fashion-MNIST samples
// (read by the idx dataset plugin), reproducibly for a seed, with the learning rate its schedule
// says; BatchNorm recalibration re-estimates statistics without touching a weight; cancellation
// stops it; and the plugin's agent trains a clone, never the model it was given.
#include "torch_doctest.hpp"

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/torch/dataset.hpp"
#include "trainer.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::agents::LrSchedule;
using profagent::agents::ScheduleKind;
using profagent::agents::TrainHooks;
using profagent::agents::TrainMode;
using profagent::agents::TrainOptions;
using profagent::torch_tk::Dataset;

using profagent::test::TestAgentContext;

namespace {

const fs::path kDemoModel = fs::path(PROFAGENT_SOURCE_DIR) / "examples" / "models" / "demo_cnn.pt";
const fs::path kPluginDir = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR);
const fs::path kFinetunePlugin = kPluginDir / "libfinetune.so";
const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

// Samples given as tensors: the Dataset interface without a file format, for tests that need no
// real data (determinism, cancellation, statistics).
class TensorDataset : public Dataset {
 public:
  TensorDataset(torch::Tensor images, torch::Tensor labels)
      : images_(std::move(images)), labels_(std::move(labels)) {
    info_.format = "tensors";
    info_.source = "memory";
    info_.size = images_.size(0);
    info_.num_classes = labels_.max().item<std::int64_t>() + 1;
    info_.sample_shape = {images_.size(1), images_.size(2), images_.size(3)};
  }
  const profagent::torch_tk::DatasetInfo& info() const override { return info_; }
  profagent::Status read_batch(const std::vector<std::int64_t>& indices,
                               profagent::torch_tk::Batch& out) override {
    torch::Tensor index = torch::tensor(indices, torch::kInt64);
    out.images = images_.index_select(0, index);
    out.labels = labels_.index_select(0, index);
    return profagent::Status::ok();
  }

 private:
  profagent::torch_tk::DatasetInfo info_;
  torch::Tensor images_;
  torch::Tensor labels_;
};

// Random 1x28x28 images with a mean and spread far from BatchNorm's defaults, and random labels.
TensorDataset synthetic_data(std::int64_t size, std::uint64_t seed = 7) {
  torch::manual_seed(seed);
  return TensorDataset(torch::randn({size, 1, 28, 28}) * 2.0 + 1.5,
                       torch::randint(0, 10, {size}, torch::kInt64));
}

torch::jit::Module load_demo() {
  REQUIRE_MESSAGE(fs::exists(kDemoModel), "run /usr/bin/python3 examples/models/make_demo_model.py");
  torch::jit::Module module = torch::jit::load(kDemoModel.string());
  module.eval();
  return module;
}

std::vector<torch::Tensor> snapshot(const torch::jit::Module& module, bool buffers = false) {
  std::vector<torch::Tensor> copies;
  if (buffers) {
    for (const auto& buffer : module.buffers()) copies.push_back(buffer.detach().clone());
  } else {
    for (const auto& parameter : module.parameters()) copies.push_back(parameter.detach().clone());
  }
  return copies;
}

bool all_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

// The plugins this suite needs, loaded once through the kernel's plugin manager from the build's
// plugin directory: the finetune agent and the idx dataset provider (whatever file holds it).
struct Plugins {
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager{registry};
  Plugins() {
    manager.add_search_path(kPluginDir.string());
    manager.load_all();
  }
};

Plugins& plugins() {
  static Plugins instance;
  return instance;
}

Json fashion_mnist_config(const std::string& split, std::int64_t limit, std::int64_t channels = 1) {
  const std::string prefix = split == "train" ? "train" : "t10k";
  Json config{{"images", (kFashionMnist / (prefix + "-images-idx3-ubyte.gz")).string()},
              {"labels", (kFashionMnist / (prefix + "-labels-idx1-ubyte.gz")).string()},
              {"limit", limit},
              {"mean", std::vector<double>(channels, 0.2860)},
              {"std", std::vector<double>(channels, 0.3530)}};
  if (channels != 1) config["channels"] = channels;
  return config;
}

std::unique_ptr<Dataset> fashion_mnist(const std::string& split, std::int64_t limit,
                                       std::int64_t channels = 1) {
  const profagent::ProviderFactory* factory = plugins().registry.find_provider("dataset", "idx");
  REQUIRE_MESSAGE(factory != nullptr, ("build the idx dataset plugin first (provider dataset/idx in " +
                                       kPluginDir.string() + ")"));
  auto config = factory->config.resolve(fashion_mnist_config(split, limit, channels));
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto made = factory->make(config.value());
  REQUIRE_MESSAGE(made.is_ok(), made.status().to_string());
  auto* dataset = dynamic_cast<Dataset*>(made.value().get());
  REQUIRE(dataset != nullptr);
  made.value().release();
  return std::unique_ptr<Dataset>(dataset);
}

const profagent::AgentFactory& finetune_factory() {
  REQUIRE_MESSAGE(fs::exists(kFinetunePlugin),
                  ("build the 'finetune' target first: " + kFinetunePlugin.string()));
  const profagent::AgentFactory* factory = plugins().registry.find_agent("finetune");
  REQUIRE(factory != nullptr);
  return *factory;
}

}  // namespace

TEST_CASE("training the demo CNN on 512 real Fashion-MNIST samples lowers the loss and beats chance by far") {
  auto train = fashion_mnist("train", 512);
  auto test = fashion_mnist("t10k", 256);
  torch::jit::Module module = load_demo().clone();
  TrainOptions options;
  options.optimizer = profagent::agents::OptimizerKind::kSgd;
  options.lr = 0.2;
  options.nesterov = true;
  options.batch_size = 16;
  options.epochs = 8;  // 32 steps each
  options.threads = 1;

  auto before = profagent::agents::evaluate_module(module, *test, 128);
  REQUIRE_MESSAGE(before.is_ok(), before.status().to_string());
  auto trained = profagent::agents::train_module(module, *train, test.get(), options);
  REQUIRE_MESSAGE(trained.is_ok(), trained.status().to_string());

  const auto& epochs = trained->epochs;
  REQUIRE(epochs.size() == 8);
  CHECK(trained->total_steps == 256);
  CHECK(trained->train_samples == 512);
  MESSAGE("loss " << epochs.front().loss << " -> " << epochs.back().loss << ", train acc "
                  << epochs.back().train_accuracy << ", test acc " << before->accuracy << " -> "
                  << *epochs.back().eval_accuracy);
  CHECK(epochs.back().loss < epochs.front().loss * 0.7);
  CHECK(epochs.back().train_accuracy > 0.5);
  REQUIRE(epochs.back().eval_accuracy.has_value());
  CHECK(*epochs.back().eval_accuracy > 0.5);
  CHECK(*epochs.back().eval_accuracy > before->accuracy + 0.3);
  CHECK_FALSE(module.is_training());
  for (const auto& epoch : epochs) {
    CHECK(epoch.steps == 32);
    CHECK(epoch.samples == 512);
    CHECK(epoch.seconds > 0.0);
  }
}

TEST_CASE("the same seed gives identical weights after the same steps, and another seed does not") {
  TensorDataset data = synthetic_data(96);
  TrainOptions options;
  options.lr = 0.05;
  options.batch_size = 16;
  options.steps = 8;
  options.augment = profagent::agents::AugmentKind::kFlipCrop;
  options.threads = 1;
  auto run = [&](std::uint64_t seed) {
    torch::jit::Module module = load_demo().clone();
    TrainOptions seeded = options;
    seeded.seed = seed;
    auto trained = profagent::agents::train_module(module, data, nullptr, seeded);
    REQUIRE_MESSAGE(trained.is_ok(), trained.status().to_string());
    CHECK(trained->total_steps == 8);
    return snapshot(module);
  };
  std::vector<torch::Tensor> first = run(3), second = run(3), other = run(4);
  CHECK(all_equal(first, second));
  CHECK_FALSE(all_equal(first, other));
  CHECK_FALSE(all_equal(first, snapshot(load_demo())));
}

TEST_CASE("steps override epochs and may end inside an epoch") {
  TensorDataset data = synthetic_data(100);
  torch::jit::Module module = load_demo().clone();
  TrainOptions options;
  options.batch_size = 32;  // 3 full batches per epoch, the last 4 samples dropped
  options.epochs = 50;
  options.steps = 7;
  auto trained = profagent::agents::train_module(module, data, nullptr, options);
  REQUIRE_MESSAGE(trained.is_ok(), trained.status().to_string());
  REQUIRE(trained->epochs.size() == 3);
  CHECK(trained->epochs[0].steps == 3);
  CHECK(trained->epochs[2].steps == 1);
  CHECK(trained->total_steps == 7);
}

TEST_CASE("the cosine schedule warms up linearly, halves at mid-run and decays towards zero") {
  TrainOptions options;
  options.lr = 0.1;
  options.schedule = ScheduleKind::kCosine;
  options.warmup_epochs = 1;
  LrSchedule schedule = profagent::agents::make_lr_schedule(options, 10, 110);  // 10 warmup + 100 cosine
  CHECK(schedule.warmup_steps == 10);
  CHECK(schedule.at(0) == doctest::Approx(0.01));
  CHECK(schedule.at(4) == doctest::Approx(0.05));
  CHECK(schedule.at(9) == doctest::Approx(0.1));
  CHECK(schedule.at(10) == doctest::Approx(0.1));
  CHECK(schedule.at(60) == doctest::Approx(0.05));
  CHECK(schedule.at(35) == doctest::Approx(0.05 * (1 + std::cos(M_PI / 4))));
  CHECK(schedule.at(109) == doctest::Approx(0.05 * (1 + std::cos(M_PI * 99 / 100))));
  CHECK(schedule.at(109) < 1e-4);
  CHECK(schedule.at(110) == doctest::Approx(0.0));
}

TEST_CASE("the step schedule multiplies by gamma every step_size epochs and constant never changes") {
  TrainOptions options;
  options.lr = 0.2;
  options.schedule = ScheduleKind::kStep;
  options.step_size = 3;
  options.gamma = 0.5;
  LrSchedule schedule = profagent::agents::make_lr_schedule(options, 10, 100);
  CHECK(schedule.at(0) == doctest::Approx(0.2));
  CHECK(schedule.at(29) == doctest::Approx(0.2));
  CHECK(schedule.at(30) == doctest::Approx(0.1));
  CHECK(schedule.at(59) == doctest::Approx(0.1));
  CHECK(schedule.at(60) == doctest::Approx(0.05));
  CHECK(schedule.at(99) == doctest::Approx(0.025));

  options.schedule = ScheduleKind::kConstant;
  schedule = profagent::agents::make_lr_schedule(options, 10, 100);
  CHECK(schedule.at(0) == doctest::Approx(0.2));
  CHECK(schedule.at(99) == doctest::Approx(0.2));
}

TEST_CASE("a warmup longer than the run leaves the last step at the peak learning rate") {
  TrainOptions options;
  options.lr = 0.3;
  options.warmup_epochs = 5;
  LrSchedule schedule = profagent::agents::make_lr_schedule(options, 4, 8);
  CHECK(schedule.warmup_steps == 7);
  CHECK(schedule.at(6) == doctest::Approx(0.3));
}

TEST_CASE("the learning rate each epoch ends with is the schedule's, as recorded in the history") {
  TensorDataset data = synthetic_data(64);
  torch::jit::Module module = load_demo().clone();
  TrainOptions options;
  options.lr = 0.08;
  options.schedule = ScheduleKind::kStep;
  options.step_size = 1;
  options.gamma = 0.5;
  options.batch_size = 16;  // 4 steps per epoch
  options.epochs = 3;
  auto trained = profagent::agents::train_module(module, data, nullptr, options);
  REQUIRE_MESSAGE(trained.is_ok(), trained.status().to_string());
  REQUIRE(trained->epochs.size() == 3);
  CHECK(trained->epochs[0].lr == doctest::Approx(0.08));
  CHECK(trained->epochs[1].lr == doctest::Approx(0.04));
  CHECK(trained->epochs[2].lr == doctest::Approx(0.02));
  Json history = trained->to_json();
  CHECK(history["epochs"].size() == 3);
  CHECK(history["epochs"][2]["lr"].get<double>() == doctest::Approx(0.02));
  CHECK(history["total_steps"] == 12);
}

TEST_CASE(
    "bn_recalibrate replaces the running statistics by the data's exact average and keeps every weight") {
  // 4 batches of 32 that cover the 128 samples once: the average of the batch means is the mean of
  // conv1's output over the whole set, which is what bn1 must then hold.
  TensorDataset data = synthetic_data(128);
  torch::jit::Module module = load_demo().clone();
  std::vector<torch::Tensor> weights = snapshot(module), stats = snapshot(module, true);
  TrainOptions options;
  options.mode = TrainMode::kBnRecalibrate;
  options.batch_size = 32;
  options.steps = 4;
  auto recalibrated = profagent::agents::recalibrate_batchnorm(module, data, options);
  REQUIRE_MESSAGE(recalibrated.is_ok(), recalibrated.status().to_string());
  CHECK(recalibrated->bn_layers == 2);
  CHECK(recalibrated->batches == 4);
  CHECK(recalibrated->samples == 128);
  // Scripted nn.BatchNorm2d keeps momentum as a class constant: read, and divided back out.
  CHECK(recalibrated->method == "cumulative");

  CHECK(all_equal(weights, snapshot(module)));
  CHECK_FALSE(all_equal(stats, snapshot(module, true)));
  CHECK_FALSE(module.is_training());

  torch::NoGradGuard no_grad;
  profagent::torch_tk::Batch all;
  std::vector<std::int64_t> indices(128);
  for (std::int64_t i = 0; i < 128; ++i) indices[i] = i;
  REQUIRE(data.read_batch(indices, all).is_ok());
  torch::Tensor conv1 = module.attr("conv1").toModule().forward({all.images}).toTensor();
  torch::Tensor running_mean = module.attr("bn1").toModule().attr("running_mean").toTensor();
  CHECK(torch::allclose(running_mean, conv1.mean({0, 2, 3}), 1e-4, 1e-5));
}

TEST_CASE("bn_recalibrate refuses a model without BatchNorm") {
  torch::jit::Module module("M");
  module.register_attribute("training", c10::BoolType::get(), true);
  module.register_parameter("w", torch::ones({10, 784}), false);
  module.define("def forward(self, x):\n  return torch.linear(torch.flatten(x, 1), self.w)\n");
  TensorDataset data = synthetic_data(8);
  TrainOptions options;
  options.mode = TrainMode::kBnRecalibrate;
  auto recalibrated = profagent::agents::recalibrate_batchnorm(module, data, options);
  REQUIRE_FALSE(recalibrated.is_ok());
  CHECK(recalibrated.status().code() == ErrorCode::kNotFound);
}

TEST_CASE("a cancelled training stops at the next batch with kCancelled") {
  TensorDataset data = synthetic_data(64);
  torch::jit::Module module = load_demo().clone();
  TrainOptions options;
  options.batch_size = 8;
  options.epochs = 5;
  int batches = 0;
  TrainHooks hooks;
  hooks.on_batch = [&](long done, long total) {
    if (done < total) ++batches;
  };
  hooks.cancelled = [&] { return batches >= 3; };
  auto trained = profagent::agents::train_module(module, data, nullptr, options, hooks);
  REQUIRE_FALSE(trained.is_ok());
  CHECK(trained.status().code() == ErrorCode::kCancelled);
  CHECK(batches == 3);
}

TEST_CASE("a model whose forward does not return class logits is refused with the shape it returned") {
  torch::jit::Module module("M");
  module.register_attribute("training", c10::BoolType::get(), true);
  module.register_parameter("w", torch::ones({1}), false);
  module.define("def forward(self, x):\n  return x * self.w\n");
  TensorDataset data = synthetic_data(8);
  auto trained = profagent::agents::train_module(module, data, nullptr, TrainOptions());
  REQUIRE_FALSE(trained.is_ok());
  CHECK(trained.status().code() == ErrorCode::kUnsupported);
  CHECK(trained.status().message().find("[8, 1, 28, 28]") != std::string::npos);
}

TEST_CASE(
    "the finetune plugin registers a training agent whose schema requires a dataset and has the defaults") {
  const profagent::AgentFactory& factory = finetune_factory();
  CHECK(factory.role == "training");
  REQUIRE(factory.find_input("model") != nullptr);
  CHECK(factory.find_input("model")->kind == "model");
  REQUIRE(factory.find_output("model") != nullptr);
  CHECK(factory.find_output("model")->kind == "model");
  REQUIRE(factory.find_output("history") != nullptr);
  CHECK(factory.find_output("history")->kind == "json");

  auto config = factory.config.resolve(Json{{"dataset", {{"format", "idx"}}}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  CHECK(config->get_string("mode") == "train");
  CHECK(config->get_string("optimizer") == "sgd");
  CHECK(config->get_string("schedule") == "cosine");
  CHECK(config->get_float("momentum") == doctest::Approx(0.9));
  CHECK(config->get_float("weight_decay") == doctest::Approx(5e-4));
  CHECK(config->get_int("batch_size") == 128);
  CHECK(config->get_int("seed") == 0);
  CHECK(config->get_int("warmup_epochs") == 0);
  CHECK(config->get_string("augment") == "none");
  CHECK_FALSE(config->has("steps"));

  CHECK_FALSE(factory.config.resolve(Json::object()).is_ok());
  CHECK_FALSE(factory.config.resolve(Json{{"dataset", {{"format", "idx"}}}, {"optimizer", "adam"}}).is_ok());
  CHECK_FALSE(factory.config.resolve(Json{{"dataset", {{"format", "idx"}}}, {"lr", -1}}).is_ok());
  CHECK_FALSE(factory.config.resolve(Json{{"dataset", {{"format", "idx"}}}, {"learning_rate", 0.1}}).is_ok());

  auto no_format = factory.config.resolve(Json{{"dataset", {{"images", "x.gz"}}}});
  REQUIRE(no_format.is_ok());
  auto agent = factory.make(no_format.value());
  REQUIRE_FALSE(agent.is_ok());
  CHECK(agent.status().message().find("dataset.format is required") != std::string::npos);
}

TEST_CASE("the finetune agent trains a clone: the input model is unchanged and the output is a new model") {
  const profagent::AgentFactory& factory = finetune_factory();
  const Json metadata = {{"input_shapes", {{1, 1, 28, 28}}}, {"dtype", "float32"}};
  auto input = std::make_shared<ModelArtifact>(std::make_shared<const torch::jit::Module>(load_demo()),
                                               Json{{"source", "demo_cnn.pt"}, {"sha256", "abc"}}, metadata);
  std::vector<torch::Tensor> before = snapshot(input->module()),
                             stats_before = snapshot(input->module(), true);

  Json dataset = fashion_mnist_config("train", 256);
  dataset["format"] = "idx";
  Json eval = fashion_mnist_config("t10k", 128);
  eval["format"] = "idx";
  auto config = factory.config.resolve(Json{{"dataset", dataset},
                                            {"eval_dataset", eval},
                                            {"lr", 0.05},
                                            {"batch_size", 32},
                                            {"epochs", 2},
                                            {"threads", 1}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto agent = factory.make(config.value());
  REQUIRE_MESSAGE(agent.is_ok(), agent.status().to_string());
  TestAgentContext context(config.value(), "finetune", {{"model", input}}, &plugins().registry);
  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());

  CHECK(all_equal(before, snapshot(input->module())));
  CHECK(all_equal(stats_before, snapshot(input->module(), true)));
  REQUIRE(context.outputs().count("model") == 1);
  auto output = std::dynamic_pointer_cast<const ModelArtifact>(context.outputs().at("model"));
  REQUIRE(output != nullptr);
  CHECK(output.get() != input.get());
  CHECK_FALSE(all_equal(before, snapshot(output->module())));
  CHECK_FALSE(output->module().is_training());
  Json summary = output->summary();
  CHECK(summary["source"] == "demo_cnn.pt");
  CHECK(summary["derived_from"]["sha256"] == "abc");
  CHECK(summary["derived_from"]["stage"] == "finetune");
  CHECK_FALSE(summary.contains("sha256"));
  CHECK(summary["params"] == 1442);
  CHECK(summary["finetune"]["steps"] == 16);
  CHECK(output->metadata() == metadata);  // the trained model keeps its input shape

  REQUIRE(context.outputs().count("history") == 1);
  CHECK(context.outputs().at("history")->kind() == "json");
  Json history = context.outputs().at("history")->summary();
  CHECK(history["mode"] == "train");
  CHECK(history["dataset"]["format"] == "idx");
  CHECK(history["dataset"]["size"] == 256);
  REQUIRE(history["epochs"].size() == 2);
  for (const auto& epoch : history["epochs"]) {
    for (const char* key : {"loss", "train_accuracy", "eval_accuracy", "eval_loss", "lr", "seconds"})
      CHECK_MESSAGE(epoch.contains(key), key);
  }
  CHECK(context.progress_count("batch") >= 16);

  // Cancelled before the first batch: the agent stops with kCancelled and publishes nothing.
  TestAgentContext cancelled(config.value(), "finetune", {{"model", input}}, &plugins().registry);
  cancelled.cancel();
  auto again = factory.make(config.value());
  REQUIRE(again.is_ok());
  profagent::Status stopped = again.value()->run(cancelled);
  CHECK(stopped.code() == ErrorCode::kCancelled);
  CHECK(cancelled.outputs().empty());
}

TEST_CASE("the finetune agent in bn_recalibrate mode publishes a model whose weights equal the input's") {
  const profagent::AgentFactory& factory = finetune_factory();
  auto input = std::make_shared<ModelArtifact>(std::make_shared<const torch::jit::Module>(load_demo()),
                                               Json::object());
  Json dataset = fashion_mnist_config("train", 256);
  dataset["format"] = "idx";
  auto config = factory.config.resolve(
      Json{{"dataset", dataset}, {"mode", "bn_recalibrate"}, {"steps", 4}, {"batch_size", 64}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto agent = factory.make(config.value());
  REQUIRE(agent.is_ok());
  TestAgentContext context(config.value(), "finetune", {{"model", input}}, &plugins().registry);
  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  auto output = std::dynamic_pointer_cast<const ModelArtifact>(context.outputs().at("model"));
  REQUIRE(output != nullptr);
  CHECK(all_equal(snapshot(input->module()), snapshot(output->module())));
  CHECK_FALSE(all_equal(snapshot(input->module(), true), snapshot(output->module(), true)));
  Json history = context.outputs().at("history")->summary();
  CHECK(history["recalibration"]["batches"] == 4);
  CHECK(history["recalibration"]["bn_layers"] == 2);
}

TEST_CASE(
    "the trained Fashion-MNIST fixtures carry their input shape and classify the test images as recorded") {
  // tests/fixtures/models/README.md: 92.91% (ResNet-14) and 88.58% (ViT) on the whole test set;
  // on its first 1000 images they score 94.1% and 88.5%.
  struct Fixture {
    const char* file;
    std::int64_t channels;
    double min_accuracy;
  };
  for (const Fixture& fixture : {Fixture{"resnet_fmnist.pt", 1, 0.93}, Fixture{"vit_fmnist.pt", 3, 0.87}}) {
    CAPTURE(fixture.file);
    const fs::path path = fs::path(PROFAGENT_SOURCE_DIR) / "tests" / "fixtures" / "models" / fixture.file;
    REQUIRE(fs::exists(path));
    torch::jit::ExtraFilesMap extra{{"profagent_meta.json", ""}};
    torch::jit::Module module = torch::jit::load(path.string(), c10::nullopt, extra);
    Json meta = Json::parse(extra["profagent_meta.json"]);
    CHECK(meta["input_shapes"] == Json::array({Json::array({1, fixture.channels, 28, 28})}));
    CHECK(meta["preprocess"]["channels"] == fixture.channels);
    CHECK(meta["trained_by"] == "workflows/train_fmnist.yaml");

    auto test = fashion_mnist("t10k", 1000, fixture.channels);
    auto evaluated = profagent::agents::evaluate_module(module, *test, 250);
    REQUIRE_MESSAGE(evaluated.is_ok(), evaluated.status().to_string());
    CHECK(evaluated->samples == 1000);
    CHECK(evaluated->accuracy > fixture.min_accuracy);
  }
}

// The evaluation stage: the measuring library on modules built here and the shipped demo CNN, an
// in-memory dataset whose answers are known, the real Fashion-MNIST test set through the real idx
// provider plugin, the evaluation plugin itself, and the evaluate_demo workflow run end to end.
#include "torch_doctest.hpp"
#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "cli/process.hpp"
#include "evaluator.hpp"
#include "model_loader.hpp"
#include "profagent/artifact.hpp"
#include "profagent/fs.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/testing/fake_agent_context.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/profile/static_profile.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::agents::AgreementCounter;
using profagent::agents::evaluate;
using profagent::agents::EvaluationHooks;
using profagent::agents::EvaluationInputs;
using profagent::agents::EvaluationOptions;
using profagent::torch_tk::InputSpec;

using profagent::test::contains;
using profagent::test::TempDir;

namespace {

const fs::path kDemoModel = fs::path(PROFAGENT_SOURCE_DIR) / "examples" / "models" / "demo_cnn.pt";
const fs::path kEvaluationPlugin = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR) / "libevaluation.so";
const fs::path kIdxPlugin = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR) / "libdataset_idx.so";
const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

torch::jit::Module new_module(const std::string& name, bool training = false) {
  torch::jit::Module module(name);
  module.register_attribute("training", c10::BoolType::get(), training);
  return module;
}

// Logits that ignore the image: a zero weight and `bias` as the bias, so the ranking of classes is
// the bias's, for every sample.
torch::jit::Module constant_logits_model(const std::vector<float>& bias, std::int64_t features) {
  torch::jit::Module module = new_module("Constant");
  module.register_parameter("w", torch::zeros({static_cast<std::int64_t>(bias.size()), features}), false);
  module.register_parameter("b", torch::tensor(bias), false);
  module.define("def forward(self, x):\n  return torch.linear(torch.flatten(x, 1), self.w, self.b)\n");
  return module;
}

// Reads the label a LabelDataset writes into each image's first pixel: the logit of class k is
// -|pixel - k|, largest at the true class, so top-1 accuracy is exactly 1.
torch::jit::Module label_reading_model(std::int64_t classes) {
  torch::jit::Module module = new_module("LabelReader");
  module.register_buffer("classes", torch::arange(classes, torch::kFloat));
  module.define(
      "def forward(self, x):\n"
      "  v = torch.flatten(x, 1)[:, 0]\n"
      "  return -torch.abs(v.unsqueeze(1) - self.classes.unsqueeze(0))\n");
  return module;
}

// A small random linear classifier over 16 features, for agreement.
torch::jit::Module linear_classifier(std::uint64_t seed) {
  torch::manual_seed(seed);
  torch::jit::Module module = new_module("Linear");
  module.register_parameter("w", torch::randn({10, 16}), false);
  module.register_parameter("b", torch::randn({10}), false);
  module.define("def forward(self, x):\n  return torch.linear(x, self.w, self.b)\n");
  return module;
}

// An in-memory dataset: image i is 1x4x4 filled with noise except its first pixel, which holds its
// label; labels follow a fixed, uneven pattern so that class frequencies differ.
class LabelDataset : public profagent::torch_tk::Dataset {
 public:
  LabelDataset(std::int64_t size, std::int64_t classes) {
    info_.format = "test";
    info_.source = "memory";
    info_.size = size;
    info_.num_classes = classes;
    info_.sample_shape = {1, 4, 4};
    labels_ = torch::empty({size}, torch::kLong);
    for (std::int64_t i = 0; i < size; ++i) labels_[i] = (i * i + 3 * i) % classes;
    torch::manual_seed(7);
    images_ = torch::rand({size, 1, 4, 4});
    images_.select(1, 0).select(1, 0).select(1, 0).copy_(labels_.to(torch::kFloat));
  }
  const profagent::torch_tk::DatasetInfo& info() const override { return info_; }
  profagent::Status read_batch(const std::vector<std::int64_t>& indices,
                               profagent::torch_tk::Batch& out) override {
    for (std::int64_t index : indices)
      if (index < 0 || index >= info_.size)
        return profagent::Status(ErrorCode::kInvalidArgument,
                                 "index " + std::to_string(index) + " out of range");
    torch::Tensor at = torch::tensor(indices, torch::kLong);
    out.images = images_.index_select(0, at);
    out.labels = labels_.index_select(0, at);
    ++reads;
    return profagent::Status::ok();
  }
  double frequency(std::int64_t label, std::int64_t first) const {
    return labels_.slice(0, 0, first).eq(label).sum().item<double>() / static_cast<double>(first);
  }
  int reads = 0;

 private:
  profagent::torch_tk::DatasetInfo info_;
  torch::Tensor images_, labels_;
};

EvaluationOptions fast_options() {
  EvaluationOptions options;
  options.warmup = 2;
  options.repeats = 5;
  return options;
}

Json evaluated(const EvaluationInputs& inputs, const EvaluationOptions& options,
               const EvaluationHooks& hooks = {}) {
  auto metrics = evaluate(inputs, options, hooks);
  REQUIRE_MESSAGE(metrics.is_ok(), metrics.status().to_string());
  return metrics.value();
}

std::shared_ptr<const ModelArtifact> demo_model() {
  REQUIRE_MESSAGE(fs::exists(kDemoModel), "run /usr/bin/python3 examples/models/make_demo_model.py");
  auto loaded = profagent::agents::load_model(kDemoModel.string(), {});
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  return loaded.value();
}

// The Fashion-MNIST test labels, read from the gzip file with the system's gzip (IDX: 8-byte header).
std::vector<int> fashion_mnist_test_labels() {
  const fs::path file = kFashionMnist / "t10k-labels-idx1-ubyte.gz";
  REQUIRE_MESSAGE(fs::exists(file), "install the Debian package dataset-fashion-mnist");
  std::FILE* pipe = ::popen(("gzip -dc '" + file.string() + "'").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::vector<unsigned char> bytes;
  unsigned char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;)
    bytes.insert(bytes.end(), buffer, buffer + n);
  REQUIRE(::pclose(pipe) == 0);
  REQUIRE(bytes.size() == 8 + 10000);
  return std::vector<int>(bytes.begin() + 8, bytes.end());
}

}  // namespace

TEST_CASE("a shape spec's inputs become input specs, and a malformed one is refused naming the entry") {
  auto specs = profagent::torch_tk::input_specs_from_shape_spec(
      Json::parse(R"({"inputs": [{"shape": [1, 3, 224, 224], "dtype": "float32"},)"
                  R"(            {"shape": [1, 8], "dtype": "int64"}]})"));
  REQUIRE_MESSAGE(specs.is_ok(), specs.status().to_string());
  REQUIRE(specs->size() == 2);
  CHECK(specs.value()[0].shape == std::vector<std::int64_t>{1, 3, 224, 224});
  CHECK((specs.value()[0].dtype == torch::kFloat32));
  CHECK((specs.value()[1].dtype == torch::kInt64));

  auto no_inputs = profagent::torch_tk::input_specs_from_shape_spec(Json::parse(R"({"shape": [1, 3]})"));
  CHECK(no_inputs.status().code() == ErrorCode::kInvalidArgument);
  CHECK(contains(no_inputs.status().message(), "no 'inputs' list"));
  auto bad_dim =
      profagent::torch_tk::input_specs_from_shape_spec(Json::parse(R"({"inputs": [{"shape": [1, 0]}]})"));
  CHECK(contains(bad_dim.status().message(), "inputs[0]"));
  CHECK(contains(bad_dim.status().message(), "not a positive integer"));
  auto bad_dtype = profagent::torch_tk::input_specs_from_shape_spec(
      Json::parse(R"({"inputs": [{"shape": [1]}, {"shape": [2], "dtype": "complex"}]})"));
  CHECK(contains(bad_dtype.status().message(), "inputs[1]"));
  CHECK(contains(bad_dtype.status().message(), "unknown dtype 'complex'"));
}

TEST_CASE("random inputs are the same for the same seed, differ for another, and take the batch asked for") {
  std::vector<InputSpec> specs{{{1, 3, 8, 8}, torch::kFloat32}, {{1, 5}, torch::kInt64}};
  auto a = profagent::torch_tk::make_inputs(specs, 4, 11, torch::kCPU);
  auto b = profagent::torch_tk::make_inputs(specs, 4, 11, torch::kCPU);
  auto c = profagent::torch_tk::make_inputs(specs, 4, 12, torch::kCPU);
  REQUIRE(a.size() == 2);
  CHECK(a[0].sizes() == torch::IntArrayRef({4, 3, 8, 8}));
  CHECK(a[1].sizes() == torch::IntArrayRef({4, 5}));
  CHECK((a[1].scalar_type() == torch::kInt64));
  CHECK(a[1].max().item<std::int64_t>() <= 1);
  CHECK(torch::equal(a[0], b[0]));
  CHECK_FALSE(torch::equal(a[0], c[0]));
}

TEST_CASE("percentiles interpolate between ranks like numpy's default") {
  using profagent::torch_tk::percentile;
  CHECK(percentile({4, 1, 3, 2}, 0.5) == doctest::Approx(2.5));
  CHECK(percentile({4, 1, 3, 2}, 0.9) == doctest::Approx(3.7));
  CHECK(percentile({7}, 0.9) == 7);
  CHECK(percentile({1, 2, 3}, 0.0) == 1);
  CHECK(percentile({1, 2, 3}, 1.0) == 3);
}

TEST_CASE("params and param_bytes are the sums of numel and bytes over the demo CNN's parameters") {
  auto model = demo_model();
  std::int64_t numel = 0, bytes = 0, buffers = 0;
  for (const auto& p : model->module().parameters()) {
    numel += p.numel();
    bytes += p.numel() * 4;
  }
  for (const auto& b : model->module().buffers())
    buffers += b.numel() * static_cast<std::int64_t>(b.element_size());
  auto stats = profagent::torch_tk::parameter_stats(model->module());
  CHECK(stats.params == 1442);
  CHECK(stats.params == numel);
  CHECK(stats.param_bytes == bytes);
  CHECK(stats.buffer_bytes == buffers);
  CHECK(buffers > 0);  // BatchNorm running statistics and counters
}

TEST_CASE("the size is the model file's when the summary names a path, else the saved module's") {
  TempDir dir;
  auto model = demo_model();
  auto from_file = profagent::torch_tk::model_size(model->module(), model->summary(), dir.path());
  REQUIRE_MESSAGE(from_file.is_ok(), from_file.status().to_string());
  CHECK(from_file->bytes == static_cast<std::int64_t>(fs::file_size(kDemoModel)));
  CHECK(from_file->source == "file");

  torch::jit::Module linear = linear_classifier(1);
  auto saved = profagent::torch_tk::model_size(linear, Json::object(), dir.path() / "work");
  REQUIRE_MESSAGE(saved.is_ok(), saved.status().to_string());
  CHECK(saved->source == "saved");
  // Saved under the name a model artifact gets: the archive's records carry the file's stem.
  fs::create_directories(dir.path() / "copy");
  linear.save((dir.path() / "copy" / "model.pt").string());
  CHECK(saved->bytes == static_cast<std::int64_t>(fs::file_size(dir.path() / "copy" / "model.pt")));
  CHECK(fs::is_empty(dir.path() / "work"));  // measured, then removed

  // A path that no longer exists falls back to saving.
  auto gone =
      profagent::torch_tk::model_size(linear, Json{{"path", (dir.path() / "gone.pt").string()}}, dir.path());
  REQUIRE(gone.is_ok());
  CHECK(gone->source == "saved");
}

TEST_CASE("latency times every repeat after the warm-up, with p50 at most p90 and min at most p50") {
  auto model = demo_model();
  torch::jit::Module module = model->module();
  torch::NoGradGuard no_grad;
  auto inputs = profagent::torch_tk::make_inputs({{{1, 1, 28, 28}, torch::kFloat32}}, 4, 0, torch::kCPU);
  auto latency = profagent::torch_tk::measure_latency(module, inputs, 3, 12);
  REQUIRE_MESSAGE(latency.is_ok(), latency.status().to_string());
  CHECK(latency->samples_ms.size() == 12);
  CHECK(latency->repeats == 12);
  CHECK(latency->warmup == 3);
  CHECK(latency->batch_size == 4);
  CHECK(latency->min > 0);
  CHECK(latency->min <= latency->p50);
  CHECK(latency->p50 <= latency->p90);
  CHECK(latency->p90 <= *std::max_element(latency->samples_ms.begin(), latency->samples_ms.end()));
  CHECK(latency->mean >= latency->min);
  Json json = latency->to_json();
  for (const char* key : {"p50", "p90", "mean", "min", "warmup", "repeats", "batch_size"})
    CHECK(json.contains(key));

  int calls = 0;
  auto cancelled = profagent::torch_tk::measure_latency(module, inputs, 0, 10, [&] { return ++calls > 3; });
  CHECK(cancelled.status().code() == ErrorCode::kCancelled);
}

TEST_CASE("peak memory of a forward counts the intermediate and output tensors it allocates") {
  // y = x * 2 then z = y + 1: y and z are alive together, 2 x 4 MiB, then y is freed.
  torch::jit::Module module = new_module("Chain");
  module.define("def forward(self, x):\n  y = x * 2.0\n  z = y + 1.0\n  return z\n");
  const std::int64_t n = 1 << 20, tensor_bytes = n * 4;
  std::vector<torch::Tensor> inputs{torch::randn({1, n})};
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) module.forward({inputs[0]});
  auto peak = profagent::torch_tk::measure_peak_memory(module, inputs);
  REQUIRE_MESSAGE(peak.is_ok(), peak.status().to_string());
  CHECK(peak->method == "c10_cpu_allocator");
  CHECK(peak->bytes >= 2 * tensor_bytes);
  CHECK(peak->bytes < 3 * tensor_bytes);

  // A forward that allocates nothing new (returns its input) has no peak of its own.
  torch::jit::Module identity = new_module("Identity");
  identity.define("def forward(self, x):\n  return x\n");
  auto none = profagent::torch_tk::measure_peak_memory(identity, inputs);
  REQUIRE(none.is_ok());
  CHECK(none->bytes == 0);
}

TEST_CASE("a model agrees with itself on every random input, with no difference at all") {
  torch::jit::Module model = linear_classifier(3);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.reference = &model;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.input_shape = std::vector<std::int64_t>{1, 16};
  options.batch_size = 10;
  Json metrics = evaluated(inputs, options);
  CHECK(metrics["agreement"]["top1"] == 1.0);
  CHECK(metrics["agreement"]["max_abs_diff"] == 0.0);
  CHECK(metrics["agreement"]["rel_l2"] == 0.0);
  CHECK(metrics["agreement"]["samples"] == 32);
  CHECK(metrics["agreement"]["inputs"] == "random");
  CHECK_FALSE(metrics.contains("accuracy"));
}

TEST_CASE("the agreement on random inputs does not depend on the batch its forwards run at") {
  // The inputs are drawn per `batch_size` batch and fed to both models `latency_batch_size` at a time.
  torch::jit::Module model = linear_classifier(5);
  torch::jit::Module reference = linear_classifier(6);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.reference = &reference;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.input_shape = std::vector<std::int64_t>{1, 16};
  options.batch_size = 12;  // 32 inputs: batches of 12, 12 and 8
  Json one = evaluated(inputs, options)["agreement"];
  options.latency_batch_size = 5;  // forwards of 5, 5 and 2 within each batch
  Json five = evaluated(inputs, options)["agreement"];
  CHECK(one["samples"] == 32);
  CHECK(five["samples"] == 32);
  CHECK(one["top1"].get<double>() > 0.0);
  CHECK(one["top1"].get<double>() < 1.0);
  CHECK(five["top1"] == one["top1"]);
  CHECK(five["max_abs_diff"].get<double>() == doctest::Approx(one["max_abs_diff"].get<double>()).epsilon(1e-5));
}

TEST_CASE("the evaluation records its phases on the stage's context, in the order they ran") {
  torch::jit::Module model = linear_classifier(7);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.reference = &model;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.input_shape = std::vector<std::int64_t>{1, 16};
  profagent::testing::FakeAgentContext context;
  EvaluationHooks hooks;
  hooks.phases = &context;
  evaluated(inputs, options, hooks);
  std::vector<std::string> names;
  for (const auto& [name, seconds] : context.phases()) {
    names.push_back(name);
    CHECK(seconds >= 0);
  }
  CHECK(names == std::vector<std::string>{"prepare", "agreement", "warm-up", "timed forwards", "MACs",
                                          "peak memory", "size and parameters"});

  // With a dataset: its pass, and the reference's forwards on the same batches as agreement.
  LabelDataset dataset(40, 10);
  torch::jit::Module reader = label_reading_model(10);
  inputs.model = &reader;
  inputs.reference = &reader;
  inputs.dataset = &dataset;
  options.input_shape.reset();
  options.batch_size = 16;
  profagent::testing::FakeAgentContext with_data;
  hooks.phases = &with_data;
  evaluated(inputs, options, hooks);
  names.clear();
  for (const auto& [name, seconds] : with_data.phases()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"prepare", "dataset pass", "agreement", "warm-up", "timed forwards",
                                          "MACs", "peak memory", "size and parameters"});
}

TEST_CASE("a copy with a perturbed bias disagrees on some inputs, by at most the bias's largest change") {
  torch::jit::Module model = linear_classifier(4);
  torch::jit::Module perturbed = model.clone();
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    torch::Tensor bias = perturbed.attr("b").toTensor();
    bias.add_(torch::randn_like(bias));
  }
  const double bias_change =
      (perturbed.attr("b").toTensor() - model.attr("b").toTensor()).abs().max().item<double>();
  EvaluationInputs inputs;
  inputs.model = &perturbed;
  inputs.reference = &model;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.input_shape = std::vector<std::int64_t>{1, 16};
  options.limit = 300;
  options.batch_size = 64;
  Json metrics = evaluated(inputs, options);
  CHECK(metrics["agreement"]["samples"] == 300);
  CHECK(metrics["agreement"]["top1"].get<double>() < 1.0);
  CHECK(metrics["agreement"]["top1"].get<double>() > 0.5);
  // Only the bias changed, so every logit moved by exactly its class's bias change.
  CHECK(metrics["agreement"]["max_abs_diff"].get<double>() == doctest::Approx(bias_change).epsilon(1e-5));
}

TEST_CASE(
    "agreement.rel_l2 is the whole set's L2 error over the reference's L2 norm, null for a zero reference") {
  AgreementCounter counter;
  torch::manual_seed(3);
  const torch::Tensor a = torch::randn({4, 10});
  const torch::Tensor b = torch::randn({6, 10});
  // 10% off on the first batch, exact on the second: sqrt(0.01·|a|² / (|a|² + |b|²)).
  REQUIRE(counter.add(a * 1.1, a).ok());
  REQUIRE(counter.add(b, b).ok());
  const double expected = std::sqrt(0.01 * a.square().sum().item<double>() /
                                    (a.square().sum().item<double>() + b.square().sum().item<double>()));
  // float32 rounding of a * 1.1 leaves ~1e-7 of relative slack.
  CHECK(counter.to_json()["rel_l2"].get<double>() == doctest::Approx(expected).epsilon(1e-5));
  AgreementCounter zeros;
  REQUIRE(zeros.add(torch::ones({2, 3}), torch::zeros({2, 3})).ok());
  CHECK(zeros.to_json()["rel_l2"].is_null());
}

TEST_CASE("a model that always predicts one class scores that class's frequency, and top-5 the five's") {
  LabelDataset dataset(300, 10);
  // Ranking 7 > 2 > 9 > 0 > 4 > the rest.
  std::vector<float> bias(10, 0.0f);
  bias[7] = 5;
  bias[2] = 4;
  bias[9] = 3;
  bias[0] = 2;
  bias[4] = 1;
  torch::jit::Module model = constant_logits_model(bias, 16);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.dataset = &dataset;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.batch_size = 64;
  Json metrics = evaluated(inputs, options);
  CHECK(metrics["samples"] == 300);
  CHECK(metrics["accuracy"].get<double>() == doctest::Approx(dataset.frequency(7, 300)));
  double five = 0;
  for (int k : {7, 2, 9, 0, 4}) five += dataset.frequency(k, 300);
  CHECK(metrics["top5"].get<double>() == doctest::Approx(five));
  CHECK(metrics["top5"].get<double>() >= metrics["accuracy"].get<double>());
  CHECK(metrics["accuracy"].get<double>() != doctest::Approx(0.1));  // the pattern is uneven on purpose
  CHECK(metrics["dataset"]["size"] == 300);
  // No shapes and no input_shape: latency used the dataset's sample shape with a batch of 1.
  CHECK(metrics["input_shapes"] == Json::parse(R"([{"shape": [1, 1, 4, 4], "dtype": "float32"}])"));
  CHECK(metrics["latency_ms"]["batch_size"] == 1);
}

TEST_CASE(
    "a model that reads the label from the image scores 1.0 on the first `limit` samples, batch by batch") {
  LabelDataset dataset(500, 10);
  torch::jit::Module model = label_reading_model(10);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.reference = &model;
  inputs.dataset = &dataset;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.batch_size = 32;
  options.limit = 100;
  options.measure_latency = false;
  std::vector<std::pair<long, long>> progress;
  EvaluationHooks hooks;
  hooks.progress = [&](long done, long total) { progress.emplace_back(done, total); };
  Json metrics = evaluated(inputs, options, hooks);
  CHECK(metrics["samples"] == 100);
  CHECK(metrics["accuracy"] == 1.0);
  CHECK(metrics["top5"] == 1.0);
  CHECK(metrics["agreement"]["top1"] == 1.0);
  CHECK(metrics["agreement"]["inputs"] == "dataset");
  CHECK(metrics["agreement"]["samples"] == 100);
  CHECK_FALSE(metrics.contains("latency_ms"));
  // Peak memory is measured all the same, on the dataset's sample shape.
  CHECK(metrics.contains("peak_memory_bytes"));
  REQUIRE(progress.size() == 4);  // 32 + 32 + 32 + 4
  CHECK(progress.back() == std::make_pair(4L, 4L));
}

TEST_CASE("cancellation between batches stops the evaluation with kCancelled") {
  LabelDataset dataset(500, 10);
  torch::jit::Module model = label_reading_model(10);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.dataset = &dataset;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.batch_size = 50;
  int batches_done = 0;
  EvaluationHooks hooks;
  hooks.progress = [&](long done, long) { batches_done = static_cast<int>(done); };
  hooks.cancelled = [&] { return batches_done >= 2; };
  auto metrics = evaluate(inputs, options, hooks);
  REQUIRE_FALSE(metrics.is_ok());
  CHECK(metrics.status().code() == ErrorCode::kCancelled);
  CHECK(contains(metrics.status().message(), "after 2 of 10 batches"));
  CHECK(dataset.reads == 2);
}

TEST_CASE(
    "the input shape comes from shapes, else input_shape, else the model's stored shapes, else the dataset, "
    "and without any it is an error") {
  LabelDataset dataset(10, 10);
  torch::jit::Module model = label_reading_model(10);
  EvaluationInputs inputs;
  inputs.model = &model;
  EvaluationOptions options;
  options.latency_batch_size = 3;

  auto none = profagent::agents::resolve_input_specs(inputs, options);
  CHECK(none.status().code() == ErrorCode::kInvalidArgument);
  CHECK(contains(none.status().message(),
                 "connect a `shapes` input (shape_resolver.spec), set `input_shape` (e.g. [1, 3, 224, 224]), use a "
                 "model file that stores its input_shapes (profagent_meta.json) or configure a `dataset`"));
  inputs.work_dir = fs::temp_directory_path();
  auto failed = evaluate(inputs, fast_options());
  CHECK(failed.status().code() == ErrorCode::kInvalidArgument);

  inputs.dataset = &dataset;
  CHECK(profagent::agents::resolve_input_specs(inputs, options)->front().shape ==
        std::vector<std::int64_t>{3, 1, 4, 4});
  inputs.model_metadata = Json{{"input_shapes", {{1, 1, 6, 6}}}, {"dtype", "float64"}};
  auto stored = profagent::agents::resolve_input_specs(inputs, options);
  CHECK(stored->front().shape == std::vector<std::int64_t>{3, 1, 6, 6});
  CHECK((stored->front().dtype == torch::kFloat64));
  options.input_shape = std::vector<std::int64_t>{1, 1, 8, 8};
  CHECK(profagent::agents::resolve_input_specs(inputs, options)->front().shape ==
        std::vector<std::int64_t>{3, 1, 8, 8});
  inputs.shapes = std::vector<InputSpec>{{{1, 1, 2, 2}, torch::kFloat16}};
  auto from_shapes = profagent::agents::resolve_input_specs(inputs, options);
  CHECK(from_shapes->front().shape == std::vector<std::int64_t>{3, 1, 2, 2});
  CHECK((from_shapes->front().dtype == torch::kFloat16));
}

TEST_CASE("a forward that fails is a runtime error naming the model, the input shape and torch's reason") {
  auto model = demo_model();
  EvaluationInputs inputs;
  inputs.model = &model->module();
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.input_shape = std::vector<std::int64_t>{1, 3, 28, 28};  // the demo CNN takes one channel
  auto metrics = evaluate(inputs, options);
  REQUIRE_FALSE(metrics.is_ok());
  CHECK(metrics.status().code() == ErrorCode::kRuntime);
  CHECK(
      contains(metrics.status().message(), "the model's forward failed on input of shape [1, 3, 28, 28]: "));
  CHECK(contains(metrics.status().message(), "channels"));
  CHECK_FALSE(contains(metrics.status().message(), "\n"));
}

TEST_CASE(
    "a model in training mode is evaluated as an eval-mode copy and the shared module is left as it was") {
  torch::jit::Module module = new_module("Dropouty", /*training=*/true);
  // In training mode the output is zero: an evaluation in training mode would be visible.
  module.define("def forward(self, x):\n  if self.training:\n    return x * 0.0\n  return x\n");
  bool changed = false;
  auto prepared = profagent::torch_tk::prepare_module(module, torch::kCPU, "model", &changed);
  REQUIRE(prepared.is_ok());
  CHECK(changed);
  CHECK_FALSE(prepared->attr("training").toBool());
  CHECK(module.attr("training").toBool());

  auto model = demo_model();  // loaded in eval mode on the CPU: used as it is, no copy
  auto same = profagent::torch_tk::prepare_module(model->module(), torch::kCPU, "model", &changed);
  REQUIRE(same.is_ok());
  CHECK_FALSE(changed);
  CHECK(same->_ivalue() == model->module()._ivalue());
}

TEST_CASE("the environment names LibTorch, the BLAS actually loaded, the quantized engine and the threads") {
  Json environment = profagent::torch_tk::environment_info(torch::kCPU);
  CHECK(environment["libtorch"] == TORCH_VERSION);
  CHECK(environment["threads"] == at::get_num_threads());
  CHECK(environment["device"] == "cpu");
  CHECK_FALSE(environment["quantized_engine"].get<std::string>().empty());
  std::string engine = c10::toString(at::globalContext().qEngine());  // "ONEDNN": reported as Python names it
  std::transform(engine.begin(), engine.end(), engine.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  CHECK(environment["quantized_engine"] == engine);
  CHECK(environment["parallel_backend"] == "OpenMP");
  CHECK(environment["blas"]["build"] == "generic");  // Debian's LibTorch: whatever libblas.so.3 is
  std::error_code ec;
  const fs::path debian_blas = fs::canonical("/usr/lib/x86_64-linux-gnu/libblas.so.3", ec);
  REQUIRE_FALSE(ec);
  CHECK(environment["blas"]["library"] == debian_blas.string());
  const bool openblas = contains(debian_blas.string(), "openblas");
  CHECK(environment["blas"]["openblas"] == openblas);
  if (openblas) CHECK(contains(environment["blas"]["openblas_config"].get<std::string>(), "OpenBLAS"));
}

TEST_CASE("threads sets the thread count for the evaluation only") {
  const int before = at::get_num_threads();
  torch::jit::Module model = linear_classifier(2);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.input_shape = std::vector<std::int64_t>{1, 16};
  options.threads = before == 1 ? 2 : 1;
  Json metrics = evaluated(inputs, options);
  CHECK(metrics["environment"]["threads"] == *options.threads);
  CHECK(at::get_num_threads() == before);
}

TEST_CASE("device cuda runs a CPU model as a CUDA copy, and is refused as unsupported without CUDA") {
  torch::jit::Module model = linear_classifier(2);
  EvaluationInputs inputs;
  inputs.model = &model;
  inputs.reference = &model;
  inputs.work_dir = fs::temp_directory_path();
  EvaluationOptions options = fast_options();
  options.device = "cuda";
  options.input_shape = std::vector<std::int64_t>{1, 16};
  auto metrics = evaluate(inputs, options);
  if (!torch::cuda::is_available()) {
    CHECK(metrics.status().code() == ErrorCode::kUnsupported);
    CHECK(contains(metrics.status().message(), "CUDA is not available"));
    return;
  }
  REQUIRE_MESSAGE(metrics.is_ok(), metrics.status().to_string());
  CHECK(metrics.value()["environment"]["device"] == "cuda");
  CHECK(metrics.value()["agreement"]["top1"] == 1.0);
  CHECK(metrics.value()["latency_ms"]["p50"].get<double>() <=
        metrics.value()["latency_ms"]["p90"].get<double>());
  CHECK(metrics.value()["peak_memory_method"] == "cuda_caching_allocator");
  for (const auto& parameter : model.parameters()) CHECK(parameter.device().is_cpu());  // the artifact's own
}

TEST_CASE(
    "the dataset config is split into the provider id and its own config, and a missing format refused") {
  auto split = profagent::torch_tk::split_dataset_config(
      Json{{"format", "idx"}, {"images", "a.gz"}, {"labels", "b.gz"}});
  REQUIRE(split.is_ok());
  CHECK(split->first == "idx");
  CHECK(split->second == Json{{"images", "a.gz"}, {"labels", "b.gz"}});
  auto missing = profagent::torch_tk::split_dataset_config(Json{{"images", "a.gz"}});
  CHECK(missing.status().code() == ErrorCode::kInvalidArgument);
  CHECK(contains(missing.status().message(), "dataset.format is required"));
}

TEST_CASE("the evaluation plugin registers agent 'evaluation' with its ports and the documented defaults") {
  REQUIRE_MESSAGE(fs::exists(kEvaluationPlugin),
                  ("build the 'evaluation' target first: " + kEvaluationPlugin.string()));
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  const auto& record = manager.load_file(kEvaluationPlugin.string());
  REQUIRE_MESSAGE(record.loaded, record.refusal);
  CHECK(record.id == "evaluation");
  const profagent::AgentFactory* factory = registry.find_agent("evaluation");
  REQUIRE(factory != nullptr);
  CHECK(factory->role == "evaluation");
  REQUIRE(factory->find_input("model") != nullptr);
  CHECK_FALSE(factory->find_input("model")->optional);
  REQUIRE(factory->find_input("reference") != nullptr);
  CHECK(factory->find_input("reference")->optional);
  CHECK(factory->find_input("shapes")->kind == "shape_spec");
  CHECK(factory->find_output("metrics")->kind == "metrics");

  auto config = factory->config.resolve(Json::object());
  REQUIRE(config.is_ok());
  CHECK(config->get_int("batch_size") == 256);
  CHECK(config->get_string("device") == "cpu");
  CHECK(config->get_int("warmup") == 5);
  CHECK(config->get_int("repeats") == 30);
  CHECK(config->get_int("latency_batch_size") == 1);
  CHECK(config->get_bool("measure_latency") == true);
  CHECK_FALSE(config->has("limit"));
  CHECK_FALSE(factory->config.resolve(Json{{"device", "tpu"}}).is_ok());
  CHECK_FALSE(factory->config.resolve(Json{{"input_shape", {1, 0, 28}}}).is_ok());
  CHECK_FALSE(factory->config.resolve(Json{{"batch_size", 0}}).is_ok());
  CHECK_FALSE(factory->config.resolve(Json{{"precision", "fp16"}}).is_ok());

  // A dataset without a format fails when the agent is made, before any model work.
  auto no_format = factory->config.resolve(Json{{"dataset", {{"images", "x.gz"}}}});
  REQUIRE(no_format.is_ok());
  CHECK_FALSE(factory->make(no_format.value()).is_ok());
}

TEST_CASE("the evaluation agent run through the plugin publishes metrics for the demo CNN against itself") {
  REQUIRE_MESSAGE(fs::exists(kEvaluationPlugin),
                  ("build the 'evaluation' target first: " + kEvaluationPlugin.string()));
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  REQUIRE(manager.load_file(kEvaluationPlugin.string()).loaded);
  const profagent::AgentFactory* factory = registry.find_agent("evaluation");
  REQUIRE(factory != nullptr);
  auto config = factory->config.resolve(Json{{"warmup", 1}, {"repeats", 4}, {"limit", 8}});
  REQUIRE(config.is_ok());
  auto agent = factory->make(config.value());
  REQUIRE(agent.is_ok());

  TempDir dir;
  profagent::test::TestAgentContext context(config.value(), "evaluate");
  context.with_work_dir(dir.path());
  auto model = demo_model();
  context.with_input("model", model);
  context.with_input("reference", model);
  context.with_input("shapes", std::make_shared<profagent::JsonArtifact>(
      "shape_spec", Json::parse(R"({"inputs": [{"shape": [1, 1, 28, 28], "dtype": "float32"}]})")));
  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  REQUIRE(context.outputs().count("metrics") == 1);
  const profagent::Artifact& artifact = *context.outputs().at("metrics");
  CHECK(artifact.kind() == "metrics");
  Json metrics = artifact.summary();
  CHECK(metrics["size_bytes"] == fs::file_size(kDemoModel));
  CHECK(metrics["params"] == 1442);
  CHECK(metrics["agreement"]["top1"] == 1.0);
  CHECK(metrics["agreement"]["samples"] == 8);
  CHECK(metrics["latency_ms"]["repeats"] == 4);
  CHECK(metrics["peak_memory_bytes"].get<std::int64_t>() > 0);
  CHECK(metrics["environment"]["device"] == "cpu");
  // MACs of one sample, from the static profile: the same count the profiler gives.
  auto statics = profagent::torch_tk::static_profile(model->module(), {torch::zeros({1, 1, 28, 28})});
  REQUIRE(statics.is_ok());
  CHECK(metrics["macs"].get<std::int64_t>() > 0);
  CHECK(metrics["macs"] == statics->macs);
  CHECK_FALSE((context.progress_count() == 0));
}

TEST_CASE("an empty dataset map means no dataset: everything but accuracy is measured") {
  REQUIRE_MESSAGE(fs::exists(kEvaluationPlugin), "build the 'evaluation' target first");
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  REQUIRE(manager.load_file(kEvaluationPlugin.string()).loaded);
  const profagent::AgentFactory* factory = registry.find_agent("evaluation");
  REQUIRE(factory != nullptr);
  auto config = factory->config.resolve(Json{{"dataset", Json::object()}, {"warmup", 1}, {"repeats", 2}});
  REQUIRE(config.is_ok());
  auto agent = factory->make(config.value());
  REQUIRE_MESSAGE(agent.is_ok(), agent.status().to_string());
  TempDir dir;
  profagent::test::TestAgentContext context(config.value(), "evaluate");
  context.with_work_dir(dir.path());
  context.with_input("model", demo_model());
  context.with_input("shapes", std::make_shared<profagent::JsonArtifact>(
      "shape_spec", Json::parse(R"({"inputs": [{"shape": [1, 1, 28, 28], "dtype": "float32"}]})")));
  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  Json metrics = context.outputs().at("metrics")->summary();
  CHECK_FALSE(metrics.contains("accuracy"));
  CHECK_FALSE(metrics.contains("dataset"));
  CHECK(metrics.contains("latency_ms"));
  CHECK(metrics.contains("macs"));
}

TEST_CASE("on Fashion-MNIST through the real idx provider a one-class model scores that class's frequency") {
  REQUIRE_MESSAGE(fs::exists(kEvaluationPlugin), "build the 'evaluation' target first");
  REQUIRE_MESSAGE(fs::exists(kIdxPlugin), ("build the 'dataset_idx' target first: " + kIdxPlugin.string()));
  const std::vector<int> labels = fashion_mnist_test_labels();
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  REQUIRE(manager.load_file(kEvaluationPlugin.string()).loaded);
  const auto& idx_record = manager.load_file(kIdxPlugin.string());
  REQUIRE_MESSAGE(idx_record.loaded, idx_record.refusal);
  const profagent::AgentFactory* factory = registry.find_agent("evaluation");
  REQUIRE(factory != nullptr);

  const int limit = 1000;
  const Json dataset = {{"format", "idx"},
                        {"images", (kFashionMnist / "t10k-images-idx3-ubyte.gz").string()},
                        {"labels", (kFashionMnist / "t10k-labels-idx1-ubyte.gz").string()}};
  auto config = factory->config.resolve(
      Json{{"dataset", dataset}, {"limit", limit}, {"batch_size", 128}, {"warmup", 1}, {"repeats", 3}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto agent = factory->make(config.value());
  REQUIRE(agent.is_ok());

  // Ranks 3 > 8 > 1 > 6 > 5 > the rest, whatever the image.
  std::vector<float> bias(10, 0.0f);
  const std::vector<int> ranking{3, 8, 1, 6, 5};
  for (std::size_t i = 0; i < ranking.size(); ++i) bias[ranking[i]] = static_cast<float>(10 - i);
  TempDir dir;
  profagent::test::TestAgentContext context(config.value(), "evaluate", {}, &registry);
  context.with_work_dir(dir.path());
  context.with_input("model", std::make_shared<ModelArtifact>(
      std::make_shared<torch::jit::Module>(constant_logits_model(bias, 28 * 28)), Json::object()));
  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  Json metrics = context.outputs().at("metrics")->summary();

  auto frequency = [&](int label) {
    return static_cast<double>(std::count(labels.begin(), labels.begin() + limit, label)) / limit;
  };
  double five = 0;
  for (int k : ranking) five += frequency(k);
  CHECK(metrics["samples"] == limit);
  CHECK(metrics["accuracy"].get<double>() == doctest::Approx(frequency(3)));
  CHECK(metrics["top5"].get<double>() == doctest::Approx(five));
  CHECK(metrics["dataset"]["size"] == 10000);
  CHECK(metrics["dataset"]["num_classes"] == 10);
  CHECK(metrics["input_shapes"] == Json::parse(R"([{"shape": [1, 1, 28, 28], "dtype": "float32"}])"));
  CHECK(metrics["size_source"] == "saved");  // a module made here has no file
  CHECK(context.progress_count() == 8);      // 1000 in batches of 128
}

TEST_CASE("the evaluate_demo workflow evaluates the demo CNN on Fashion-MNIST and reports the metrics") {
  REQUIRE_MESSAGE(fs::exists(kIdxPlugin), ("build the 'dataset_idx' target first: " + kIdxPlugin.string()));
  REQUIRE_MESSAGE(fs::exists(kEvaluationPlugin), "build the 'evaluation' target first");
  REQUIRE(fs::exists(kFashionMnist / "t10k-images-idx3-ubyte.gz"));
  TempDir dir;
  const fs::path run_dir = dir.path() / "run";
  profagent::test::Process run({PROFAGENT_RUN_EXE, "workflows/evaluate_demo.yaml", "--set", "limit=500",
                                "--output-dir", run_dir.string()},
                               dir.path() / "capture", PROFAGENT_SOURCE_DIR);
  profagent::test::ProcessResult result = run.wait();
  REQUIRE_MESSAGE(result.exit_code == 0, result.err);

  auto report = profagent::read_json(run_dir / "report.json");
  REQUIRE(report.is_ok());
  CHECK(report.value()["status"] == "completed");
  auto data = profagent::read_json(run_dir / "stages" / "evaluate" / "outputs" / "metrics" / "data.json");
  REQUIRE_MESSAGE(data.is_ok(), data.status().to_string());
  Json metrics = data.value();
  for (const char* key : {"accuracy", "top5", "samples", "latency_ms", "size_bytes", "params", "param_bytes",
                          "peak_memory_bytes", "environment"})
    CHECK_MESSAGE(metrics.contains(key), key);
  CHECK(metrics["samples"] == 500);
  CHECK(metrics["size_bytes"] == fs::file_size(kDemoModel));
  CHECK(metrics["params"] == 1442);
  // Untrained: about chance, far from perfect.
  CHECK(metrics["accuracy"].get<double>() < 0.5);
  CHECK(metrics["top5"].get<double>() >= metrics["accuracy"].get<double>());
  CHECK(report.value()["outputs"]["metrics"] == metrics);
  Json stage;
  for (const Json& entry : report.value()["stages"])
    if (entry.value("id", "") == "evaluate") stage = entry;
  REQUIRE_FALSE(stage.is_null());
  CHECK(stage["status"] == "completed");
  CHECK(stage["outputs"]["metrics"] == metrics);
}

// The acquisition stage: real TorchScript files (one built here in C++, the shipped demo CNN) loaded
// by the loader library and through the real plugin, each kind of bad input refused with its path
// and reason.
#include "torch_doctest.hpp"
#include <torch/cuda.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "model_loader.hpp"
#include "profagent/artifact.hpp"
#include "profagent/fs.hpp"
#include "profagent/plugin.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::agents::load_model;
using profagent::agents::LoadOptions;
using profagent::agents::source_scheme;

using profagent::test::contains;
using profagent::test::starts_with;
using profagent::test::TempDir;
using profagent::test::TestAgentContext;

namespace {

const fs::path kDemoModel = fs::path(PROFAGENT_SOURCE_DIR) / "examples" / "models" / "demo_cnn.pt";
const fs::path kPluginFile = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR) / "libacquisition.so";

// Restores the working directory even when a check fails (relative sources resolve against it).
class ChangeDirectory {
 public:
  explicit ChangeDirectory(const fs::path& to) : previous_(fs::current_path()) { fs::current_path(to); }
  ~ChangeDirectory() {
    std::error_code ec;
    fs::current_path(previous_, ec);
  }

 private:
  fs::path previous_;
};

// A real TorchScript module made in C++: y = x w^T + b with a 3x4 weight, 15 parameters. It gets the
// `training` flag every module scripted or traced in Python has, which eval() switches off.
fs::path save_linear_model(const fs::path& dir, const std::string& name = "linear.pt") {
  torch::jit::Module module("M");
  module.register_attribute("training", c10::BoolType::get(), true);
  module.register_parameter("w", torch::arange(12, torch::kFloat).reshape({3, 4}) / 10, false);
  module.register_parameter("b", torch::tensor({1.0f, -1.0f, 0.5f}), false);
  module.define("def forward(self, x):\n  return torch.linear(x, self.w, self.b)\n");
  fs::path path = dir / name;
  module.save(path.string());
  return path;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string read_bytes(const fs::path& path) {
  auto content = profagent::read_file(path);
  REQUIRE(content.is_ok());
  return content.value();
}

std::string error_of(const std::string& source, LoadOptions options = {}) {
  auto loaded = load_model(source, options);
  REQUIRE_FALSE(loaded.is_ok());
  // LibTorch's backtraces never reach the user: one line, the reason only.
  CHECK_FALSE(contains(loaded.status().message(), "\n"));
  return loaded.status().message();
}

ErrorCode code_of(const std::string& source, LoadOptions options = {}) {
  auto loaded = load_model(source, options);
  REQUIRE_FALSE(loaded.is_ok());
  return loaded.status().code();
}

}  // namespace

TEST_CASE("a TorchScript file made in C++ loads with its full provenance and still computes") {
  TempDir dir;
  fs::path file = save_linear_model(dir.path());

  auto loaded = load_model(file.string(), {});
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  Json summary = loaded.value()->summary();

  auto digest = profagent::sha256_file(file);
  REQUIRE(digest.is_ok());
  CHECK(summary["sha256"] == digest.value());
  CHECK(summary["source"] == file.string());
  CHECK(summary["path"] == file.string());
  CHECK(summary["size_bytes"] == fs::file_size(file));
  CHECK(summary["format"] == "torchscript");
  CHECK(summary["device"] == "cpu");
  CHECK(summary["eval"] == true);
  CHECK(summary["methods"] == Json::array({"forward"}));
  CHECK(summary["params"] == 15);
  CHECK(summary["loaded_in_ms"].get<double>() >= 0.0);
  CHECK(loaded.value()->kind() == "model");

  torch::jit::Module module = loaded.value()->module();
  CHECK_FALSE(module.is_training());
  torch::Tensor x = torch::ones({2, 4});
  torch::Tensor expected = torch::linear(x, torch::arange(12, torch::kFloat).reshape({3, 4}) / 10,
                                         torch::tensor({1.0f, -1.0f, 0.5f}));
  CHECK(torch::allclose(module.forward({x}).toTensor(), expected));
}

TEST_CASE(
    "the shipped demo CNN loads in eval mode, classifies a 1x1x28x28 image and carries its input shape") {
  REQUIRE_MESSAGE(fs::exists(kDemoModel), "run /usr/bin/python3 examples/models/make_demo_model.py");
  auto loaded = load_model(kDemoModel.string(), {});
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  Json summary = loaded.value()->summary();
  CHECK(summary["params"] == 1442);
  CHECK(summary["sha256"] == profagent::sha256_file(kDemoModel).value());

  torch::jit::Module module = loaded.value()->module();
  CHECK_FALSE(module.is_training());
  for (const auto& child : module.named_modules()) CHECK_FALSE(child.value.is_training());
  torch::NoGradGuard no_grad;
  torch::Tensor logits = module.forward({torch::randn({1, 1, 28, 28})}).toTensor();
  CHECK(logits.sizes() == torch::IntArrayRef({1, 10}));

  // The metadata later stages read to find the input shape without asking the workflow.
  torch::jit::ExtraFilesMap extra{{"profagent_meta.json", ""}};
  torch::jit::load(kDemoModel.string(), c10::nullopt, extra);
  Json meta = Json::parse(extra["profagent_meta.json"]);
  CHECK(meta["input_shapes"] == Json::parse("[[1, 1, 28, 28]]"));
  CHECK(meta["dtype"] == "float32");
}

TEST_CASE("eval: false leaves the model in training mode") {
  TempDir dir;
  LoadOptions options;
  options.eval = false;
  auto loaded = load_model(save_linear_model(dir.path()).string(), options);
  REQUIRE(loaded.is_ok());
  CHECK(loaded.value()->module().is_training());
  CHECK(loaded.value()->summary()["eval"] == false);
}

TEST_CASE("a relative source resolves against the current directory and keeps the given form as source") {
  TempDir dir;
  fs::create_directories(dir.path() / "models");
  save_linear_model(dir.path() / "models", "m.pt");
  ChangeDirectory cd(dir.path());

  auto loaded = load_model("models/./m.pt", {});
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  CHECK(loaded.value()->summary()["source"] == "models/./m.pt");
  CHECK(loaded.value()->summary()["path"] == (fs::current_path() / "models" / "m.pt").string());
}

TEST_CASE("a missing file is reported as not found with its path and the directory it was looked for in") {
  TempDir dir;
  std::string missing = (dir.path() / "nope.pt").string();
  CHECK(error_of(missing) == "model file not found: " + missing);
  CHECK(code_of(missing) == ErrorCode::kNotFound);

  ChangeDirectory cd(dir.path());
  CHECK(error_of("nope.pt") ==
        "model file not found: nope.pt (relative to " + fs::current_path().string() + ")");
}

TEST_CASE("a directory is refused as not a model file") {
  TempDir dir;
  std::string message = error_of(dir.path().string());
  CHECK(starts_with(message, dir.path().string() + " is a directory, not a TorchScript model file"));
  CHECK(code_of(dir.path().string()) == ErrorCode::kInvalidArgument);
}

TEST_CASE("a text file is refused as not a TorchScript archive with torch's reason on one line") {
  TempDir dir;
  fs::path text = dir.path() / "notes.pt";
  write_bytes(text, "this is a text file, not a model\nsecond line\n");
  std::string message = error_of(text.string());
  CHECK(starts_with(message, text.string() + " is not a TorchScript archive ("));
  // miniz says "not a ZIP archive" or "failed finding central directory" depending on the length.
  CHECK(contains(message, "(PytorchStreamReader failed reading zip archive: "));
  CHECK_FALSE(contains(message, "truncated"));
  CHECK(code_of(text.string()) == ErrorCode::kParseError);
}

TEST_CASE("an empty file is refused as not a TorchScript archive") {
  TempDir dir;
  fs::path empty = dir.path() / "empty.pt";
  write_bytes(empty, "");
  CHECK(error_of(empty.string()) == empty.string() + " is not a TorchScript archive (the file is empty)");
}

TEST_CASE("the first half of a real model file is refused as a truncated archive") {
  TempDir dir;
  std::string bytes = read_bytes(kDemoModel);
  fs::path half = dir.path() / "half.pt";
  write_bytes(half, bytes.substr(0, bytes.size() / 2));
  std::string message = error_of(half.string());
  CHECK(starts_with(message, half.string() + " is a truncated or damaged TorchScript archive ("));
  CHECK(contains(message, "central directory"));
  CHECK(code_of(half.string()) == ErrorCode::kParseError);
}

TEST_CASE("a weights-only pickle archive is refused with a hint to export the model with torch.jit") {
  TempDir dir;
  fs::path checkpoint = dir.path() / "state_dict.pt";
  c10::Dict<std::string, torch::Tensor> state;
  state.insert("w", torch::zeros({2, 2}));
  std::vector<char> bytes = torch::jit::pickle_save(state);
  write_bytes(checkpoint, std::string(bytes.begin(), bytes.end()));

  std::string message = error_of(checkpoint.string());
  CHECK(starts_with(message, checkpoint.string() + " is a ZIP archive but not a TorchScript module ("));
  CHECK(contains(message, "torch.jit.script or torch.jit.trace"));
}

TEST_CASE("a source with an unknown scheme is refused as unsupported, naming the scheme and the source") {
  CHECK(error_of("hf:org/model") ==
        "unsupported source scheme 'hf' in 'hf:org/model' (supported: file paths, torchvision:NAME)");
  CHECK(code_of("hf:org/model") == ErrorCode::kUnsupported);
  CHECK(error_of("") == "the model source is empty");
}

TEST_CASE("a scheme is a letter-led prefix before the first colon, and drive letters and paths are not schemes") {
  CHECK(source_scheme("torchvision:resnet18") == "torchvision");
  CHECK(source_scheme("git+ssh://host/repo") == "git+ssh");
  CHECK(source_scheme("models/resnet.pt") == "");
  CHECK(source_scheme("runs/a:b/model.pt") == "");
  CHECK(source_scheme("C:\\models\\m.pt") == "");
  CHECK(source_scheme("/abs/path:1.pt") == "");
  CHECK(source_scheme("my_model:v2.pt") == "");
}

TEST_CASE("an existing file whose name looks like scheme:rest loads as a file") {
  TempDir dir;
  save_linear_model(dir.path(), "model:v2.pt");
  ChangeDirectory cd(dir.path());
  auto loaded = load_model("model:v2.pt", {});
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  CHECK(loaded.value()->summary()["params"] == 15);
}

TEST_CASE("cuda without a usable GPU is a clear error, and an unknown device is refused") {
  TempDir dir;
  std::string file = save_linear_model(dir.path()).string();
  LoadOptions cuda;
  cuda.device = "cuda";
  if (!torch::cuda::is_available()) {
    CHECK(starts_with(error_of(file, cuda),
                      "device 'cuda' was requested for " + file + " but CUDA is not available"));
    CHECK(code_of(file, cuda) == ErrorCode::kUnsupported);
  } else {
    auto loaded = load_model(file, cuda);
    REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
    CHECK(loaded.value()->summary()["device"] == "cuda");
    for (const auto& parameter : loaded.value()->module().parameters()) CHECK(parameter.is_cuda());
  }
  LoadOptions tpu;
  tpu.device = "tpu";
  CHECK(error_of(file, tpu) == "unknown device 'tpu' (expected cpu or cuda)");
}

// What the kernel does with the model loader a model-producing plugin registers (the SDK contract
// has no LibTorch, so the "model" kind has no built-in loader).
static void register_model_loader_like_a_plugin() {
  profagent::Registrar registrar;
  profagent::add_model_artifact_loader(registrar);
  for (auto& [kind, loader] : registrar.artifact_loaders()) profagent::register_artifact_loader(kind, loader);
}

TEST_CASE("a loaded model saved as an artifact loads back with the same provenance") {
  TempDir dir;
  auto loaded = load_model(save_linear_model(dir.path()).string(), {});
  REQUIRE(loaded.is_ok());
  fs::path artifact_dir = dir.path() / "artifact";
  REQUIRE(profagent::save_artifact(*loaded.value(), artifact_dir).is_ok());
  register_model_loader_like_a_plugin();
  auto reloaded = profagent::load_artifact(artifact_dir);
  REQUIRE_MESSAGE(reloaded.is_ok(), reloaded.status().to_string());
  CHECK(reloaded.value()->kind() == "model");
  CHECK(reloaded.value()->summary() == loaded.value()->summary());
}

TEST_CASE("a model's stored metadata survives saving it as an artifact and loading it back") {
  TempDir dir;
  auto loaded = load_model((fs::path(PROFAGENT_SOURCE_DIR) / "examples/models/demo_cnn.pt").string(), {});
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  const profagent::Json& metadata = loaded.value()->metadata();
  REQUIRE(metadata.is_object());
  CHECK(metadata["input_shapes"] == profagent::Json::parse("[[1, 1, 28, 28]]"));

  fs::path artifact_dir = dir.path() / "artifact";
  REQUIRE(profagent::save_artifact(*loaded.value(), artifact_dir).is_ok());
  register_model_loader_like_a_plugin();
  auto reloaded = profagent::load_artifact(artifact_dir);
  REQUIRE_MESSAGE(reloaded.is_ok(), reloaded.status().to_string());
  auto model = std::dynamic_pointer_cast<const profagent::ModelArtifact>(reloaded.value());
  REQUIRE(model != nullptr);
  CHECK(model->metadata() == metadata);

  auto without = load_model(save_linear_model(dir.path()).string(), {});
  REQUIRE(without.is_ok());
  CHECK(without.value()->metadata().is_null());
}

TEST_CASE(
    "the acquisition plugin registers an agent whose schema requires source and defaults device and eval") {
  REQUIRE_MESSAGE(fs::exists(kPluginFile), ("build the 'acquisition' target first: " + kPluginFile.string()));
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  const auto& record = manager.load_file(kPluginFile.string());
  REQUIRE_MESSAGE(record.loaded, record.refusal);
  CHECK(record.id == "acquisition");

  const profagent::AgentFactory* factory = registry.find_agent("acquisition");
  REQUIRE(factory != nullptr);
  CHECK(factory->role == "acquisition");
  CHECK(factory->inputs.empty());
  REQUIRE(factory->find_output("model") != nullptr);
  CHECK(factory->find_output("model")->kind == "model");

  auto config = factory->config.resolve(Json{{"source", "m.pt"}});
  REQUIRE(config.is_ok());
  CHECK(config.value().get_string("device") == "cpu");
  CHECK(config.value().get_bool("eval") == true);
  CHECK_FALSE(factory->config.resolve(Json::object()).is_ok());
  CHECK_FALSE(factory->config.resolve(Json{{"source", "m.pt"}, {"device", "tpu"}}).is_ok());
  CHECK_FALSE(factory->config.resolve(Json{{"source", "m.pt"}, {"precision", "fp16"}}).is_ok());
}

TEST_CASE("the acquisition agent run through the plugin publishes the model, or fails naming the file") {
  REQUIRE_MESSAGE(fs::exists(kPluginFile), ("build the 'acquisition' target first: " + kPluginFile.string()));
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  REQUIRE(manager.load_file(kPluginFile.string()).loaded);
  const profagent::AgentFactory* factory = registry.find_agent("acquisition");
  REQUIRE(factory != nullptr);

  TempDir dir;
  fs::path file = save_linear_model(dir.path());
  auto config = factory->config.resolve(Json{{"source", file.string()}});
  REQUIRE(config.is_ok());
  auto agent = factory->make(config.value());
  REQUIRE(agent.is_ok());
  TestAgentContext context(config.value(), "acquire");
  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());

  REQUIRE(context.outputs().count("model") == 1);
  auto model = std::dynamic_pointer_cast<const ModelArtifact>(context.outputs().at("model"));
  REQUIRE(model != nullptr);
  CHECK(model->summary()["sha256"] == profagent::sha256_file(file).value());
  CHECK(model->summary()["params"] == 15);
  torch::jit::Module module = model->module();  // a handle to the same module; forward() is non-const
  CHECK(module.forward({torch::zeros({1, 4})}).toTensor().sizes() == torch::IntArrayRef({1, 3}));

  std::string missing = (dir.path() / "missing.pt").string();
  auto bad_config = factory->config.resolve(Json{{"source", missing}});
  REQUIRE(bad_config.is_ok());
  auto bad_agent = factory->make(bad_config.value());
  REQUIRE(bad_agent.is_ok());
  TestAgentContext bad_context(bad_config.value(), "acquire");
  profagent::Status failed = bad_agent.value()->run(bad_context);
  CHECK(failed.code() == ErrorCode::kNotFound);
  CHECK(failed.message() == "model file not found: " + missing);
  CHECK(bad_context.outputs().empty());
}

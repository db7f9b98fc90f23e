// The `torchvision:` source: the query parsed and typed, real torchvision classes exported by
// tools/export_torchvision.py with the Debian Python (python3-torch, python3-torchvision), cached and
// loaded, and every kind of bad request refused with its reason. Exports are cached under the build
// tree (torchvision_cache/), so a rerun only pays for the tests that use a fresh cache on purpose.
#include "torch_doctest.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model_loader.hpp"
#include "profagent/fs.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "torchvision_source.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::agents::load_model;
using profagent::agents::LoadOptions;
using profagent::agents::parse_torchvision_source;
using profagent::agents::TorchvisionRequest;

using profagent::test::contains;
using profagent::test::TempDir;

namespace {

// Shared by every test run in this build tree: an export made once is reused by later runs.
const fs::path kSharedCache = fs::path(PROFAGENT_TEST_BINARY_DIR) / "torchvision_cache";
const fs::path kPluginFile = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR) / "libacquisition.so";

// Sets an environment variable for one scope and restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const char* value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) previous_ = old;
    if (value != nullptr) {
      ::setenv(name_.c_str(), value, 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (previous_) {
      ::setenv(name_.c_str(), previous_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

LoadOptions options_with_cache(const fs::path& cache_dir) {
  LoadOptions options;
  options.torchvision.cache_dir = cache_dir;
  return options;
}

std::shared_ptr<const ModelArtifact> load_ok(const std::string& source, const LoadOptions& options) {
  auto loaded = load_model(source, options);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  return loaded.value();
}

profagent::Status load_error(const std::string& source, const LoadOptions& options) {
  auto loaded = load_model(source, options);
  REQUIRE_FALSE(loaded.is_ok());
  return loaded.status();
}

torch::Tensor forward(const ModelArtifact& model, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  torch::jit::Module module = model.module();  // a handle; forward() is non-const
  return module.forward({input}).toTensor();
}

Json stored_metadata(const fs::path& file) {
  torch::jit::ExtraFilesMap extra{{"profagent_meta.json", ""}};
  torch::jit::load(file.string(), c10::nullopt, extra);
  if (extra["profagent_meta.json"].empty()) return Json();
  return Json::parse(extra["profagent_meta.json"]);
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A stand-in exporter (run by the real Python) for the failure paths: no torch needed, fast.
fs::path write_fake_exporter(const fs::path& dir, const std::string& body) {
  fs::path script = dir / "fake_exporter.py";
  std::ofstream(script) << "import os, sys, signal\n"
                           "args = sys.argv[1:]\n"
                           "output = args[args.index('--output') + 1]\n"
                        << body;
  return script;
}

}  // namespace

TEST_CASE("a torchvision source names the builder and its typed keywords and has one canonical spelling") {
  auto plain = parse_torchvision_source("torchvision:resnet50");
  REQUIRE_MESSAGE(plain.is_ok(), plain.status().to_string());
  CHECK(plain->name == "resnet50");
  CHECK(plain->export_mode == "script");
  CHECK(plain->kwargs == Json::object());
  CHECK(plain->input_shape.empty());
  CHECK(plain->canonical() == "torchvision:resnet50?export=script");

  auto typed = parse_torchvision_source(
      "torchvision:vit_b_16?num_classes=10&dropout=0.1&aux_logits=false&norm_layer=None&mode=fast&export="
      "trace"
      "&input_shape=1x3x160x160");
  REQUIRE_MESSAGE(typed.is_ok(), typed.status().to_string());
  CHECK(typed->kwargs == Json{{"num_classes", 10},
                              {"dropout", 0.1},
                              {"aux_logits", false},
                              {"norm_layer", nullptr},
                              {"mode", "fast"}});
  CHECK(typed->kwargs["num_classes"].is_number_integer());
  CHECK(typed->export_mode == "trace");
  CHECK(typed->input_shape == std::vector<std::int64_t>{1, 3, 160, 160});
  CHECK(typed->canonical() ==
        "torchvision:vit_b_16?aux_logits=false&dropout=0.1&export=trace&input_shape=1x3x160x160&mode=fast&"
        "norm_layer=None&num_classes=10");

  // Order and spelling do not make another request, so they share one cached file.
  auto a = parse_torchvision_source("torchvision:resnet18?num_classes=010&export=script");
  auto b = parse_torchvision_source("torchvision:resnet18?export=script&num_classes=10");
  auto c = parse_torchvision_source("torchvision:resnet18?num_classes=10");
  REQUIRE((a.is_ok() && b.is_ok() && c.is_ok()));
  CHECK(a->canonical() == b->canonical());
  CHECK(a->cache_file_name() == c->cache_file_name());
  std::string name = a->cache_file_name();
  CHECK(name.rfind("resnet18-script-", 0) == 0);
  CHECK(name.size() == std::string("resnet18-script-").size() + 12 + 3);
  CHECK(name.substr(name.size() - 3) == ".pt");
  CHECK(name.substr(16, 12) == profagent::sha256_hex(a->canonical()).substr(0, 12));

  auto traced = parse_torchvision_source("torchvision:resnet18?num_classes=10&export=trace");
  REQUIRE(traced.is_ok());
  CHECK(traced->cache_file_name() != a->cache_file_name());
  TorchvisionRequest no_meta = c.value();
  no_meta.metadata = false;
  CHECK(no_meta.cache_file_name() != c->cache_file_name());
}

TEST_CASE("a malformed torchvision source is refused before any Python runs, saying what is wrong") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"torchvision:", "no model name"},
      {"torchvision:res net", "'res net' is not a torchvision builder name"},
      {"torchvision:resnet18?", "nothing after '?'"},
      {"torchvision:resnet18?num_classes", "'num_classes' is not key=value"},
      {"torchvision:resnet18?num_classes=10&&dropout=0.1", "an empty key=value pair"},
      {"torchvision:resnet18?num_classes=10&", "an empty key=value pair"},
      {"torchvision:resnet18?=3", "'' is not a keyword name"},
      {"torchvision:resnet18?num-classes=3", "'num-classes' is not a keyword name"},
      {"torchvision:resnet18?num_classes=", "no value for 'num_classes'"},
      {"torchvision:resnet18?num_classes=1&num_classes=2", "'num_classes' is given twice"},
      {"torchvision:resnet18?export=onnx", "export must be script or trace, not 'onnx'"},
      {"torchvision:resnet18?input_shape=1x3x0x224", "input_shape '1x3x0x224' is not positive integers"},
  };
  // A Python that does not exist: any attempt to export would fail with kNotFound instead.
  LoadOptions options;
  options.torchvision.python = "/nonexistent/python3";
  TempDir cache;
  options.torchvision.cache_dir = cache.path();
  for (const auto& entry : cases) {
    // Named copies: doctest's CAPTURE is a lambda, which cannot capture structured bindings in C++17.
    const std::string& source = entry.first;
    const std::string& reason = entry.second;
    CAPTURE(source);
    profagent::Status status = load_error(source, options);
    CHECK(status.code() == ErrorCode::kInvalidArgument);
    CHECK(status.message().rfind("bad torchvision source '" + source + "': ", 0) == 0);
    CHECK(contains(status.message(), reason));
  }
  auto one_dim = parse_torchvision_source("torchvision:resnet18?input_shape=224");
  REQUIRE(one_dim.is_ok());
  CHECK(one_dim->input_shape == std::vector<std::int64_t>{224});
  CHECK(files_in(cache.path()).empty());
}

TEST_CASE("keywords that would download pretrained weights are refused by the loader and by the exporter") {
  TempDir cache;
  LoadOptions options = options_with_cache(cache.path());
  for (const std::string key : {"weights", "pretrained", "weights_backbone"}) {
    profagent::Status status = load_error("torchvision:resnet18?" + key + "=DEFAULT", options);
    CHECK(status.code() == ErrorCode::kInvalidArgument);
    CHECK(status.message() == "'" + key + "' is refused in 'torchvision:resnet18?" + key +
                                  "=DEFAULT': pretrained weights cannot be downloaded by profagent; "
                                  "torchvision:resnet18 is built with random weights (weights=None)");
  }
  // The exporter keeps its own guard for callers that bypass the parser.
  TorchvisionRequest request;
  request.name = "resnet18";
  request.kwargs = Json{{"weights", "DEFAULT"}};
  auto exported = profagent::agents::export_torchvision(request, "torchvision:resnet18", options.torchvision);
  REQUIRE_FALSE(exported.is_ok());
  CHECK(exported.status().code() == ErrorCode::kInvalidArgument);
  CHECK(contains(exported.status().message(), "'weights' is refused"));
  CHECK(files_in(cache.path()).empty());
}

TEST_CASE(
    "an unknown torchvision model is refused with the close matches, and an unknown keyword with torch's "
    "reason") {
  TempDir cache;
  LoadOptions options = options_with_cache(cache.path());
  profagent::Status unknown = load_error("torchvision:resnet5", options);
  CHECK(unknown.code() == ErrorCode::kInvalidArgument);
  CHECK(contains(unknown.message(), "unknown torchvision model 'resnet5' (did you mean resnet50, "));

  profagent::Status far = load_error("torchvision:qqqqqq", options);
  CHECK(contains(far.message(), "unknown torchvision model 'qqqqqq' (torchvision "));
  CHECK(contains(far.message(), "classification models, e.g. resnet50"));

  profagent::Status keyword = load_error("torchvision:resnet18?colour=red", options);
  CHECK(keyword.code() == ErrorCode::kInvalidArgument);
  CHECK(contains(keyword.message(), "torchvision.models.resnet18 does not accept {\"colour\": \"red\"}"));
  CHECK(contains(keyword.message(), "unexpected keyword argument 'colour'"));
  CHECK(files_in(cache.path()).empty());
}

TEST_CASE(
    "torchvision resnet18 scripted loads with its provenance, records its input shape and is reused from the "
    "cache") {
  LoadOptions options = options_with_cache(kSharedCache);
  auto first = load_ok("torchvision:resnet18", options);
  Json summary = first->summary();
  fs::path file = kSharedCache / parse_torchvision_source("torchvision:resnet18")->cache_file_name();
  CHECK(summary["source"] == "torchvision:resnet18");
  CHECK(summary["path"] == file.string());
  CHECK(summary["cache_path"] == file.string());
  CHECK(summary["torchvision_name"] == "resnet18");
  CHECK(summary["export"] == "script");
  CHECK(summary["kwargs"] == Json::object());
  CHECK(summary["cached"].is_boolean());
  CHECK(summary["params"] == 11689512);
  CHECK(summary["sha256"] == profagent::sha256_file(file).value());
  CHECK(summary["torchvision_version"].get<std::string>().rfind("0.", 0) == 0);
  // Scripted: the graph keeps the Python methods it calls.
  CHECK(summary["methods"] == Json::array({"_forward_impl", "forward"}));
  CHECK_FALSE(first->module().is_training());
  CHECK(forward(*first, torch::randn({1, 3, 224, 224})).sizes() == torch::IntArrayRef({1, 1000}));

  Json meta = stored_metadata(file);
  CHECK(meta["input_shapes"] == Json::parse("[[1, 3, 224, 224]]"));
  CHECK(meta["dtype"] == "float32");
  CHECK(meta["source"] == "torchvision:resnet18?export=script");
  CHECK(meta["export"] == "script");
  CHECK(meta["torchvision_version"] == summary["torchvision_version"]);

  auto again = load_ok("torchvision:resnet18?export=script", options);
  CHECK(again->summary()["cached"] == true);
  CHECK(again->summary()["export_seconds"] == 0.0);
  CHECK(again->summary()["sha256"] == summary["sha256"]);
}

TEST_CASE(
    "torchvision resnet18 traced computes the same logits as the scripted one, both built from seed 0") {
  LoadOptions options = options_with_cache(kSharedCache);
  auto traced = load_ok("torchvision:resnet18?export=trace", options);
  auto scripted = load_ok("torchvision:resnet18", options);
  CHECK(traced->summary()["export"] == "trace");
  CHECK(traced->summary()["methods"] == Json::array({"forward"}));
  CHECK(traced->summary()["params"] == 11689512);
  CHECK(stored_metadata(traced->summary()["path"].get<std::string>())["export"] == "trace");

  torch::Tensor input = torch::randn({2, 3, 224, 224});
  torch::Tensor from_trace = forward(*traced, input);
  CHECK(from_trace.sizes() == torch::IntArrayRef({2, 1000}));
  CHECK(torch::allclose(from_trace, forward(*scripted, input), 1e-4, 1e-5));
}

TEST_CASE(
    "an export into an empty cache runs the exporter once, is byte-reproducible and leaves no temp files") {
  TempDir first_cache, second_cache;
  const std::string source = "torchvision:resnet18?num_classes=10&export=trace&input_shape=1x3x64x64";
  auto fresh = load_ok(source, options_with_cache(first_cache.path()));
  Json summary = fresh->summary();
  CHECK(summary["cached"] == false);
  CHECK(summary["export_seconds"].get<double>() > 0.0);
  CHECK(summary["kwargs"] == Json{{"num_classes", 10}});
  CHECK(summary["input_shape"] == Json::array({1, 3, 64, 64}));
  CHECK(forward(*fresh, torch::randn({1, 3, 64, 64})).sizes() == torch::IntArrayRef({1, 10}));
  CHECK(stored_metadata(summary["path"].get<std::string>())["input_shapes"] ==
        Json::parse("[[1, 3, 64, 64]]"));
  CHECK(files_in(first_cache.path()) ==
        std::vector<std::string>{parse_torchvision_source(source)->cache_file_name()});

  auto cached = load_ok(source, options_with_cache(first_cache.path()));
  CHECK(cached->summary()["cached"] == true);

  // Same request, another cache: the same bytes (seeded weights and trace input, fixed hash seed).
  auto elsewhere = load_ok(source, options_with_cache(second_cache.path()));
  CHECK(elsewhere->summary()["cached"] == false);
  CHECK(elsewhere->summary()["sha256"] == summary["sha256"]);
}

TEST_CASE("a missing Python is reported with the interpreter's path and how to choose another") {
  TempDir cache;
  LoadOptions options = options_with_cache(cache.path());
  options.torchvision.python = "/nonexistent/python3";
  profagent::Status status = load_error("torchvision:resnet18", options);
  CHECK(status.code() == ErrorCode::kNotFound);
  CHECK(contains(status.message(),
                 "cannot run the Python interpreter /nonexistent/python3 to export "
                 "torchvision:resnet18 (cannot run /nonexistent/python3: No such file"));
  CHECK(contains(status.message(), "PROFAGENT_PYTHON"));
}

TEST_CASE("a failed export reports the exporter's last stderr lines and leaves nothing in the cache") {
  TempDir dir, cache;
  LoadOptions options = options_with_cache(cache.path());
  options.torchvision.python = "/usr/bin/python3";
  options.torchvision.exporter =
      write_fake_exporter(dir.path(),
                          "for i in range(30):\n"
                          "    print(f'line {i}', file=sys.stderr)\n"
                          "print('RuntimeError: cannot script this', file=sys.stderr)\n"
                          "sys.exit(1)\n");
  profagent::Status status = load_error("torchvision:resnet18", options);
  CHECK(status.code() == ErrorCode::kRuntime);
  CHECK(contains(status.message(), "exporting torchvision:resnet18 (script) with /usr/bin/python3 "));
  CHECK(contains(status.message(), "failed (exit code 1):\n  line 19\n"));
  CHECK(contains(status.message(), "\n  line 29\n  RuntimeError: cannot script this"));
  CHECK_FALSE(contains(status.message(), "line 18\n"));
  CHECK(files_in(cache.path()).empty());
}

TEST_CASE("an exporter killed halfway leaves no half-written file, and its temp directory is removed") {
  TempDir dir, cache;
  LoadOptions options = options_with_cache(cache.path());
  // Like the real exporter: a private temp directory named after the pid, then killed before the rename.
  options.torchvision.exporter = write_fake_exporter(
      dir.path(),
      "temp = os.path.join(os.path.dirname(output), '.' + os.path.basename(output) + f'.tmp-{os.getpid()}')\n"
      "os.makedirs(temp)\n"
      "open(os.path.join(temp, os.path.basename(output)), 'wb').write(b'PK half')\n"
      "os.kill(os.getpid(), signal.SIGKILL)\n");
  profagent::Status status = load_error("torchvision:resnet18", options);
  CHECK(status.code() == ErrorCode::kRuntime);
  CHECK(contains(status.message(), "failed (killed by signal 9)"));
  CHECK(files_in(cache.path()).empty());
}

TEST_CASE("the Python and the cache directory default to PROFAGENT_PYTHON and the XDG cache") {
  {
    ScopedEnv python("PROFAGENT_PYTHON", nullptr);
    CHECK(profagent::agents::default_python() == "/usr/bin/python3");
  }
  {
    ScopedEnv python("PROFAGENT_PYTHON", "/opt/py/bin/python3");
    CHECK(profagent::agents::default_python() == "/opt/py/bin/python3");
  }
  {
    ScopedEnv xdg("XDG_CACHE_HOME", "/var/cache/me");
    CHECK(profagent::agents::default_torchvision_cache_dir() == "/var/cache/me/profagent/torchvision");
  }
  {
    ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
    ScopedEnv home("HOME", "/home/someone");
    CHECK(profagent::agents::default_torchvision_cache_dir() == "/home/someone/.cache/profagent/torchvision");
  }
  auto exporter = profagent::agents::find_exporter();
  REQUIRE_MESSAGE(exporter.is_ok(), exporter.status().to_string());
  CHECK(exporter.value().filename() == "export_torchvision.py");
}

TEST_CASE(
    "the acquisition plugin takes python and cache_dir and publishes a torchvision model with its "
    "provenance") {
  REQUIRE_MESSAGE(fs::exists(kPluginFile), ("build the 'acquisition' target first: " + kPluginFile.string()));
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager(registry);
  REQUIRE(manager.load_file(kPluginFile.string()).loaded);
  const profagent::AgentFactory* factory = registry.find_agent("acquisition");
  REQUIRE(factory != nullptr);
  CHECK(factory->config.find("python") != nullptr);
  CHECK(factory->config.find("cache_dir") != nullptr);

  auto config = factory->config.resolve(Json{{"source", "torchvision:resnet18"},
                                             {"cache_dir", kSharedCache.string()},
                                             {"python", "/usr/bin/python3"}});
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto agent = factory->make(config.value());
  REQUIRE(agent.is_ok());

  profagent::testing::FakeAgentContext context(config.value(), "acquire");

  profagent::Status status = agent.value()->run(context);
  REQUIRE_MESSAGE(status.is_ok(), status.to_string());
  REQUIRE(context.outputs().count("model") == 1);
  Json summary = context.outputs().at("model")->summary();
  CHECK(summary["torchvision_name"] == "resnet18");
  CHECK(summary["python"] == "/usr/bin/python3");
  CHECK(fs::path(summary["cache_path"].get<std::string>()).parent_path() == kSharedCache);
}

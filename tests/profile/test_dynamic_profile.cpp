// The dynamic profile on real models: per-layer latencies that add up to the measured forward, the
// module each op is charged to, shares, per-layer memory, the Chrome trace, threads, and errors.
#include "torch_doctest.hpp"

#include <ATen/Parallel.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "profagent/profile/dynamic_profile.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::ErrorCode;
using profagent::Json;
using profagent::test::contains;
using profagent::torch_tk::DynamicProfile;
using profagent::torch_tk::DynamicProfileOptions;

namespace {

const fs::path kModels = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "models";

torch::jit::Module load_fixture(const std::string& file) {
  auto module = torch::jit::load((kModels / file).string());
  module.eval();
  return module;
}

DynamicProfile profile_ok(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                          DynamicProfileOptions options = {}) {
  auto profile = profagent::torch_tk::dynamic_profile(module, inputs, options);
  REQUIRE_MESSAGE(profile.is_ok(), profile.status().to_string());
  return std::move(profile).value();
}

std::set<std::string> module_paths(const torch::jit::Module& module) {
  std::set<std::string> paths;
  for (const auto& entry : module.named_modules()) paths.insert(entry.name.empty() ? "(root)" : entry.name);
  return paths;
}

double share_sum(const DynamicProfile& profile) {
  double total = 0;
  for (const auto& layer : profile.layers) total += layer.share;
  return total;
}

// root: x -> a (linear 64->256) -> relu (root's own op) -> b (linear 256->8).
torch::jit::Module make_two_layer_net() {
  torch::manual_seed(0);
  auto linear = [](const std::string& name, std::int64_t in, std::int64_t out) {
    torch::jit::Module m(name);
    m.register_parameter("weight", torch::randn({out, in}), false);
    m.register_parameter("bias", torch::randn({out}), false);
    m.define("def forward(self, x):\n  return torch.linear(x, self.weight, self.bias)\n");
    return m;
  };
  torch::jit::Module net("TwoLayer");
  net.register_module("a", linear("A", 64, 256));
  net.register_module("b", linear("B", 256, 8));
  net.define("def forward(self, x):\n  return self.b.forward(torch.relu(self.a.forward(x)))\n");
  return net;
}

}  // namespace

TEST_CASE("the module path of an interpreter frame list skips the root, methods of the same module and free functions") {
  using profagent::torch_tk::module_path_from_hierarchy;
  CHECK(module_path_from_hierarchy({"TOP(ResNet)::forward", "SELF(ResNet)::_forward_impl", "layer1(Sequential)::forward",
                                    "0(BasicBlock)::forward", "conv1(Conv2d)::forward", "SELF(Conv2d)::_conv_forward"}) ==
        "layer1.0.conv1");
  CHECK(module_path_from_hierarchy({"TOP(ResNet)::forward", "bn1(BatchNorm2d)::forward", "::batch_norm"}) == "bn1");
  CHECK(module_path_from_hierarchy({"TOP(Net)::forward"}).empty());
  CHECK(module_path_from_hierarchy({}).empty());
}

TEST_CASE("each op of a module built in C++ is charged to the submodule whose code ran it") {
  auto net = make_two_layer_net();
  DynamicProfileOptions options;
  options.warmup = 2;
  options.repeats = 5;
  auto profile = profile_ok(net, {torch::randn({4, 64})}, options);
  std::set<std::string> names;
  for (const auto& layer : profile.layers) names.insert(layer.name);
  CHECK(names == std::set<std::string>{"a", "b", "(root)"});
  REQUIRE(profile.find("a") != nullptr);
  CHECK(profile.find("a")->ops == 1);  // aten::linear, its nested aten::addmm not counted again
  CHECK(profile.find("(root)")->ops == 1);  // the relu the root ran itself
  CHECK(share_sum(profile) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(profile.method == "timeline_partition");
  CHECK(profile.repeats == 5);
  for (const auto& layer : profile.layers) CHECK(layer.samples_ms.size() == 5);
}

// The timings' structure on the fixtures. Speed and the sum ratio's closeness to 1 are not asserted
// here (a shared, loaded machine makes them noisy): bench/profile.cpp prints the ratios.
void check_timing_structure(const torch::jit::Module& model, const DynamicProfile& profile, int repeats) {
  INFO("sum " << profile.sum_of_layers_ms << " ms, bare p50 " << profile.bare.p50_ms << " ms, profiled p50 "
              << profile.profiled.p50_ms << " ms, gap " << profile.gap_ms << " ms, ratio " << profile.sum_ratio);
  MESSAGE(profile.model << ": sum_ratio " << profile.sum_ratio << " (sum " << profile.sum_of_layers_ms
                        << " ms, bare p50 " << profile.bare.p50_ms << " ms, profiled p50 " << profile.profiled.p50_ms
                        << " ms)");
  CHECK(profile.method == "timeline_partition");
  CHECK(profile.bookkeeping_ms == 0);
  CHECK(profile.threads == 1);
  CHECK(profile.sum_ratio > 0);
  CHECK(profile.sum_of_layers_ms > 0);
  CHECK(profile.bare.samples_ms.size() == static_cast<std::size_t>(repeats));
  CHECK(profile.profiled.samples_ms.size() == static_cast<std::size_t>(repeats));
  CHECK(profile.bare.p90_ms >= profile.bare.p50_ms);
  CHECK(profile.profiled.p90_ms >= profile.profiled.p50_ms);
  CHECK(share_sum(profile) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(profile.gap_ms >= 0);
  CHECK(profile.gap_ms < profile.profiled.p50_ms);
  // Every op is attributed to a real module path of the model (the trace holds every top-level op).
  const auto paths = module_paths(model);
  std::int64_t ops = 0;
  for (const auto& layer : profile.layers) {
    CHECK_MESSAGE(paths.count(layer.name) == 1, layer.name);
    CHECK(layer.ops > 0);
    CHECK(layer.samples_ms.size() == static_cast<std::size_t>(repeats));
    CHECK(layer.p90_ms >= layer.p50_ms);
    CHECK(layer.ms >= 0);
    ops += layer.ops;
  }
  CHECK(profile.trace.size() == static_cast<std::size_t>(ops));
}

TEST_CASE("the fixture ResNet's profile attributes every op and reports how its layers add up") {
  auto model = load_fixture("resnet_fmnist.pt");
  DynamicProfileOptions options;
  options.model_name = "fixture ResNet";
  options.threads = 1;
  options.warmup = 3;
  options.repeats = 15;
  auto profile = profile_ok(model, {torch::randn({1, 1, 28, 28})}, options);
  check_timing_structure(model, profile, 15);
  CHECK(profile.find("layer1.0.conv1") != nullptr);
}

TEST_CASE("the fixture ViT's profile attributes every op and reports how its layers add up") {
  auto model = load_fixture("vit_fmnist.pt");
  DynamicProfileOptions options;
  options.model_name = "fixture ViT";
  options.threads = 1;
  options.repeats = 15;
  auto profile = profile_ok(model, {torch::randn({1, 3, 28, 28})}, options);
  check_timing_structure(model, profile, 15);
  CHECK(profile.find("encoder.layers.encoder_layer_0.self_attention") != nullptr);
  CHECK(profile.find("encoder.layers.encoder_layer_3.mlp.0") != nullptr);
}

TEST_CASE("a forward whose op sequence changes between calls falls back to per-op attribution and says so") {
  // Every other call runs one more op (a relu in `act`): the timed forwards cannot all reuse the
  // attribution forward's sequence.
  torch::jit::Module act("Act");
  act.define("def forward(self, x):\n  return torch.relu(x)\n");
  torch::jit::Module net("Alternating");
  net.register_attribute("calls", c10::IntType::get(), 0);
  net.register_module("act", act);
  net.define(
      "def forward(self, x):\n"
      "  self.calls = self.calls + 1\n"
      "  y = x * 2.0\n"
      "  if self.calls % 2 == 0:\n"
      "    y = self.act.forward(y)\n"
      "  return y + 1.0\n");
  DynamicProfileOptions options;
  options.warmup = 1;
  options.repeats = 4;
  options.bare = false;  // with bare forwards interleaved, every profiled forward would be an even call
  auto profile = profile_ok(net, {torch::randn({2, 8})}, options);
  CHECK(profile.method == "timeline_partition+per_op_attribution");
  REQUIRE(profile.find("act") != nullptr);
  REQUIRE(profile.find("(root)") != nullptr);
  CHECK(share_sum(profile) == doctest::Approx(1.0).epsilon(1e-6));
  for (const auto& layer : profile.layers) CHECK(layer.samples_ms.size() == 4);
  CHECK(profile.sum_ratio > 0);
}

TEST_CASE("the Chrome trace has one complete event per top-level op, with its module and input shapes") {
  auto model = load_fixture("resnet_fmnist.pt");
  DynamicProfileOptions options;
  options.warmup = 2;
  options.repeats = 3;
  auto profile = profile_ok(model, {torch::randn({1, 1, 28, 28})}, options);
  const Json trace = Json::parse(profile.chrome_trace().dump());  // as a viewer reads it
  REQUIRE(trace.contains("traceEvents"));
  std::int64_t ops = 0;
  for (const auto& layer : profile.layers) ops += layer.ops;
  CHECK(trace["traceEvents"].size() == static_cast<std::size_t>(ops));
  CHECK(profile.trace.size() == static_cast<std::size_t>(ops));
  const auto paths = module_paths(model);
  double previous_ts = -1;
  for (const auto& event : trace["traceEvents"]) {
    CHECK(event["ph"] == "X");
    CHECK(event["dur"].get<double>() >= 0);
    CHECK(event["ts"].get<double>() >= previous_ts);  // in execution order on one thread
    previous_ts = event["ts"].get<double>();
    CHECK(paths.count(event["args"]["module"].get<std::string>()) == 1);
  }
  const Json& first = trace["traceEvents"][0];
  CHECK(first["name"] == "aten::conv2d");
  CHECK(first["args"]["module"] == "conv1");
  if (profile.shapes_recorded) CHECK(first["args"]["input_shapes"][0] == Json::array({1, 1, 28, 28}));
}

TEST_CASE("a layer that allocates a large temporary reports at least its size as peak memory") {
  torch::jit::Module big("Big");
  big.define("def forward(self, x):\n  y = x.repeat(64, 1)\n  return y.sum(0, keepdim=True)\n");
  torch::jit::Module net("Net");
  net.register_module("big", big);
  net.define("def forward(self, x):\n  return self.big.forward(x) + 1.0\n");
  const std::int64_t temporary = 64 * 1000 * 1000 * 4 / 1000;  // 64 copies of 1000 floats
  auto profile = profile_ok(net, {torch::randn({1, 1000})});
  REQUIRE(profile.find("big") != nullptr);
  CHECK(profile.memory_method == "c10_allocator_report");
  CHECK(profile.find("big")->peak_bytes >= temporary);
  CHECK(profile.peak_bytes >= profile.find("big")->peak_bytes);
}

TEST_CASE("the profile runs under the thread count asked for and restores the caller's") {
  const int before = at::get_num_threads();
  DynamicProfileOptions options;
  options.threads = 1;
  options.repeats = 2;
  auto profile = profile_ok(make_two_layer_net(), {torch::randn({2, 64})}, options);
  CHECK(profile.threads == 1);
  CHECK(at::get_num_threads() == before);
}

TEST_CASE("a module in training mode is profiled in eval mode and left in training mode") {
  auto model = load_fixture("resnet_fmnist.pt");
  model.train();
  DynamicProfileOptions options;
  options.repeats = 2;
  profile_ok(model, {torch::randn({1, 1, 28, 28})}, options);
  CHECK(model.is_training());
  CHECK(model.attr("layer1").toModule().is_training());
}

TEST_CASE("bad options and a forward that fails are errors naming the model and the input") {
  auto net = make_two_layer_net();
  DynamicProfileOptions options;
  options.model_name = "twolayer.pt";
  options.repeats = 0;
  auto bad = profagent::torch_tk::dynamic_profile(net, {torch::randn({2, 64})}, options);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == ErrorCode::kInvalidArgument);
  CHECK(contains(bad.status().message(), "repeats"));

  options.repeats = 2;
  auto failed = profagent::torch_tk::dynamic_profile(net, {torch::randn({2, 5})}, options);
  REQUIRE_FALSE(failed.is_ok());
  CHECK(failed.status().code() == ErrorCode::kRuntime);
  CHECK(contains(failed.status().message(), "twolayer.pt"));
  CHECK(contains(failed.status().message(), "[2, 5]"));
}

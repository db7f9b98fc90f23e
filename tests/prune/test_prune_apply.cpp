// Structured pruning end to end: ratio 0 is the identity; pruning units whose producing weights are
// zero leaves the outputs unchanged, relative to their magnitude (CNN groups, depthwise, flatten→linear,
// SE, MLP hidden units with an int attribute); the history replays to the same model; plans that target
// frozen layers fail with the reason; and real torchvision models (random BatchNorm statistics),
// scripted and traced, prune at 0.3 and load in Python. test_prune_mutation.cpp shows these checks
// fail on a wrong prune.
#include "torch_doctest.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model_loader.hpp"
#include "prune_checks.hpp"
#include "random_batch_norm.hpp"
#include "test_support.hpp"
#include "torchvision_models.hpp"
#include "torchvision_source.hpp"

namespace fs = std::filesystem;
using profagent::test::contains;
using profagent::test::forward_tensor;
using profagent::test::graph_of;
using profagent::test::param_count;
using profagent::test::relative_difference;
using profagent::test::zero_weight_replay;
using profagent::test::ZeroWeightReplay;
using namespace profagent::torch_tk;
using profagent::test::load_torchvision;
using profagent::test::kExactRelative;

namespace {


PruneResult prune_ok(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                     const PruneOptions& options) {
  auto result = prune(module, inputs, options);
  REQUIRE_MESSAGE(result.is_ok(), result.status().to_string());
  return std::move(result).value();
}

// Runs the saved model in Python (torch.jit.load) on the input and returns its output.
torch::Tensor python_forward(const fs::path& model, const torch::Tensor& input, const fs::path& dir) {
  const fs::path input_file = dir / "input.pt";
  const fs::path output_file = dir / "output.pt";
  const fs::path program = dir / "run.py";
  {
    auto bytes = torch::pickle_save(input);
    std::ofstream(input_file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::ofstream(program) << "import sys, torch\n"
                            "m = torch.jit.load(sys.argv[1]).eval()\n"
                            "x = torch.load(sys.argv[2])\n"
                            "with torch.no_grad():\n"
                            "    torch.save(m(x), sys.argv[3])\n";
  const std::string command = profagent::agents::default_python().string() + " " + program.string() + " " +
                              model.string() + " " + input_file.string() + " " + output_file.string();
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "python failed: " << command);
  std::ifstream stream(output_file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toTensor();
}

}  // namespace

TEST_CASE("prune apply: ratio 0 is the identity") {
  auto net = profagent::test::residual_net();
  std::vector<torch::jit::IValue> inputs{torch::randn({2, 3, 8, 8})};
  PruneResult result = prune_ok(net, inputs, PruneOptions{});
  CHECK(result.pruned_groups == 0);
  CHECK(result.params_after == result.params_before);
  torch::Tensor expected = forward_tensor(net, inputs);
  CHECK(torch::equal(forward_tensor(result.module, inputs), expected));
}

TEST_CASE("prune apply: removing units whose producing weights are zero leaves the outputs unchanged") {
  std::vector<torch::jit::IValue> image{torch::randn({2, 3, 8, 8})};
  auto exact = [](const torch::jit::Module& net, const std::vector<torch::jit::IValue>& inputs, double ratio) {
    const ZeroWeightReplay replay = zero_weight_replay(net, inputs, ratio);
    MESSAGE(net.type()->name()->name() << ": " << replay.removed_units << " units removed, params "
                                        << replay.params_before << " → " << replay.params_after << ", "
                                        << replay.difference);
    CHECK(replay.difference.relative < kExactRelative);
  };
  SUBCASE("residual") { exact(profagent::test::residual_net(), image, 0.4); }
  SUBCASE("concat") { exact(profagent::test::concat_net(), image, 0.4); }
  SUBCASE("depthwise") { exact(profagent::test::depthwise_net(), image, 0.4); }
  SUBCASE("squeeze-excitation") { exact(profagent::test::se_net(), image, 0.5); }
  SUBCASE("flatten into a linear layer") { exact(profagent::test::flatten_net(), {torch::randn({2, 3, 4, 4})}, 0.5); }
  SUBCASE("MLP hidden units, width read from an int attribute") {
    exact(profagent::test::mlp_with_attribute(), {torch::randn({3, 6})}, 0.5);
  }
}

TEST_CASE("prune apply: pruning rewrites the depthwise groups, view sizes and int attributes it depends on") {
  SUBCASE("depthwise") {
    auto net = profagent::test::depthwise_net();
    PruneOptions options;
    options.ratio = 0.5;
    PruneResult result = prune_ok(net, {torch::randn({1, 3, 8, 8})}, options);
    CHECK(result.module.attr("dw").toModule().attr("weight").toTensor().size(0) == 6);
    CHECK(result.params_after < result.params_before);
    CHECK(result.macs_after < result.macs_before);
  }
  SUBCASE("int attribute of scripted code") {
    auto net = profagent::test::mlp_with_attribute();
    PruneOptions options;
    options.ratio = 0.5;
    options.ignore_input_layer = false;  // fc1 reads the model input
    PruneResult result = prune_ok(net, {torch::randn({3, 6})}, options);
    CHECK(result.module.attr("hidden").toInt() == 4);
    CHECK(result.module.attr("fc2").toModule().attr("weight").toTensor().size(1) == 4);
  }
}

TEST_CASE("prune apply: the history replayed on the original model rebuilds the same model") {
  auto net = profagent::test::concat_net();
  std::vector<torch::jit::IValue> inputs{torch::randn({2, 3, 8, 8})};
  PruneOptions options;
  options.ratio = 0.35;
  PruneResult first = prune_ok(net, inputs, options);
  REQUIRE(first.pruned_groups > 0);
  auto history = PruneHistory::from_json(profagent::Json::parse(first.history.to_json().dump()));
  REQUIRE(history.is_ok());
  PruneResult again = prune_ok(net, inputs, history->replay_options());
  CHECK(again.params_after == first.params_after);
  auto a = first.module.named_parameters();
  auto b = again.module.named_parameters();
  std::map<std::string, torch::Tensor> replayed;
  for (const auto& entry : b) replayed[entry.name] = entry.value;
  for (const auto& entry : a) CHECK(torch::equal(entry.value, replayed.at(entry.name)));
  CHECK(torch::equal(forward_tensor(first.module, inputs), forward_tensor(again.module, inputs)));
}

TEST_CASE("prune apply: options are checked and a plan that targets a frozen layer fails with the reason") {
  auto net = profagent::test::residual_net();
  std::vector<torch::jit::IValue> inputs{torch::randn({1, 3, 8, 8})};
  PruneOptions options;
  options.layer_ratios["fc"] = 0.5;
  auto result = prune(net, inputs, options);
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().code() == profagent::ErrorCode::kNotFound);
  CHECK(contains(result.status().message(), "'fc'"));
  CHECK(contains(result.status().message(), "model output"));
  PruneOptions bad;
  bad.ratio = 1.0;
  CHECK(prune(net, inputs, bad).status().code() == profagent::ErrorCode::kInvalidArgument);
  SUBCASE("the stem is ignored by default and prunable when named in the plan") {
    PruneOptions global;
    global.ratio = 0.5;
    PruneResult pruned = prune_ok(net, inputs, global);
    CHECK(pruned.module.attr("conv1").toModule().attr("weight").toTensor().size(0) == 8);
    PruneOptions planned;
    planned.layer_ratios["conv1"] = 0.5;
    pruned = prune_ok(net, inputs, planned);
    CHECK(pruned.module.attr("conv1").toModule().attr("weight").toTensor().size(0) == 4);
    CHECK(pruned.module.attr("fc").toModule().attr("weight").toTensor().size(1) == 4);
  }
  SUBCASE("round_to keeps a multiple") {
    PruneOptions rounded;
    rounded.ratio = 0.3;
    rounded.round_to = 4;
    PruneResult pruned = prune_ok(net, inputs, rounded);
    // 8 units, 30% → keep 6 → rounded up to 8: nothing removed.
    CHECK(pruned.pruned_groups == 0);
  }
}

// The models come from PROFAGENT_PRUNE_MODELS (space-separated) when set, and the input side from
// PROFAGENT_PRUNE_INPUT: bench/check_prune_models.sh runs this case on the whole list at 224.
TEST_CASE("prune apply: torchvision CNNs, scripted and traced, prune at 0.3 and run the same in Python") {
  std::vector<std::string> models = {"resnet18", "mobilenet_v2", "mobilenet_v3_small"};
  if (const char* listed = std::getenv("PROFAGENT_PRUNE_MODELS")) {
    models.clear();
    std::istringstream names(listed);
    for (std::string name; names >> name;) models.push_back(name);
  }
  const char* side_text = std::getenv("PROFAGENT_PRUNE_INPUT");
  const std::int64_t side = side_text != nullptr ? std::atoll(side_text) : 96;
  torch::manual_seed(0);
  torch::Tensor input = torch::randn({1, 3, side, side});
  for (const std::string& name : models) {
    for (const std::string export_kind : {"script", "trace"}) {
      CAPTURE(name);
      CAPTURE(export_kind);
      torch::jit::Module model = load_torchvision("torchvision:" + name + "?export=" + export_kind);
      // torchvision's BatchNorms are identical per channel: a wrong slice of them would not show.
      const std::int64_t batch_norms = profagent::test::randomize_batch_norms(model, {input});
      const double magnitude = forward_tensor(model, {input}).abs().max().item<double>();
      PruneOptions options;
      options.ratio = 0.3;
      PruneResult result = prune_ok(model, {input}, options);
      std::string frozen;
      for (std::size_t k = 0; k < result.frozen.size() && k < 3; ++k) {
        frozen += (k ? " | " : "") + std::to_string(result.frozen[k].units) + " units: " + result.frozen[k].reason;
      }
      std::string warnings;
      for (const auto& warning : result.warnings) warnings += (warnings.empty() ? "" : " | ") + warning;
      torch::Tensor ours = forward_tensor(result.module, {input});
      CHECK(ours.sizes() == forward_tensor(model, {input}).sizes());

      profagent::test::TempDir dir("prune_python");
      const fs::path file = dir.path() / "pruned.pt";
      result.module.save(file.string());
      const auto python = relative_difference(ours, python_forward(file, input, dir.path()));
      MESSAGE("python vs ours: " << python);
      CHECK(python.relative < kExactRelative);

      // Zero-weight exactness on the real model (L1-chosen units zeroed, then removed).
      const ZeroWeightReplay zero = zero_weight_replay(model, {input}, 0.3);
      MESSAGE("zero-weight replay: " << zero.removed_units << " units removed, " << zero.difference);
      CHECK(zero.difference.relative < kExactRelative);
      MESSAGE("ROW | " << name << " | " << export_kind << " | " << result.pruned_groups << "/" << result.groups << " | "
                       << result.params_before << " → " << result.params_after << " | " << result.macs_before << " → "
                       << result.macs_after << " | " << result.graph_seconds << " | " << result.prune_seconds << " | "
                       << batch_norms << " | " << magnitude << " | " << zero.removed_units << " | "
                       << zero.difference.relative << " | " << python.relative << " | "
                       << (warnings.empty() ? "-" : warnings) << " | " << (frozen.empty() ? "-" : frozen) << " |");
      CHECK(result.params_after < result.params_before);
      CHECK(result.macs_after < result.macs_before);
      CHECK(result.params_after == param_count(result.module));
    }
  }
}

// The analysis stage without the kernel: the real profiler, analysis, pruning and backend plugins
// (loaded from the build's plugin directories) on the fixture ResNet trained on Fashion-MNIST. The
// embedded planner's plan, pruned at a MAC target with its allocation kept; measured sensitivity; and
// the re-ask and fallback paths driven by the `scripted` test backend (tests/fixtures/plugins/scripted_llm).
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "profagent/fs.hpp"
#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "shape_resolution.hpp"
#include "test_support.hpp"
#include "torch_doctest.hpp"

namespace fs = std::filesystem;
using profagent::ArtifactPtr;
using profagent::Json;
using profagent::ModelArtifact;
using profagent::Status;
using profagent::test::TempDir;
using profagent::test::TestAgentContext;

namespace {

const fs::path kResnet = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "models" / "resnet_fmnist.pt";
const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

struct AnalysisPlugins {
  profagent::kernel::Registry registry;
  profagent::kernel::PluginManager manager{registry};
  AnalysisPlugins() {
    manager.add_search_path(PROFAGENT_PLUGIN_OUTPUT_DIR);
    manager.add_search_path(std::string(PROFAGENT_FIXTURE_PLUGIN_DIR) + "/scripted_llm");
    manager.load_all();
  }
};

AnalysisPlugins& analysis_plugins() {
  static AnalysisPlugins instance;
  return instance;
}

ArtifactPtr resnet() {
  auto module = std::make_shared<torch::jit::Module>(torch::jit::load(kResnet.string()));
  auto metadata = profagent::agents::read_model_metadata(kResnet.string());
  REQUIRE(metadata.is_ok());
  return std::make_shared<ModelArtifact>(
      module, Json{{"source", kResnet.string()}, {"path", kResnet.string()}}, metadata.value());
}

struct Ran {
  std::unique_ptr<TestAgentContext> context;
  Status status;
  Json output(const std::string& port) const { return context->outputs().at(port)->summary(); }
};

Ran run_stage(const std::string& agent, const Json& with, std::map<std::string, ArtifactPtr> inputs,
              const fs::path& work = fs::temp_directory_path()) {
  const profagent::AgentFactory* factory = analysis_plugins().registry.find_agent(agent);
  const std::string missing = "build the " + agent + " plugin first (in " PROFAGENT_PLUGIN_OUTPUT_DIR ")";
  REQUIRE_MESSAGE(factory != nullptr, missing);
  auto config = factory->config.resolve(with);
  REQUIRE_MESSAGE(config.is_ok(), config.status().to_string());
  auto made = factory->make(config.value());
  REQUIRE_MESSAGE(made.is_ok(), made.status().to_string());
  Ran ran;
  ran.context = std::make_unique<TestAgentContext>(config.value(), agent, std::move(inputs),
                                                   &analysis_plugins().registry);
  ran.context->with_work_dir(work);
  ran.status = made.value()->run(*ran.context);
  return ran;
}

// The fixture ResNet's profile, made once by the real profiler (few repeats: shares, not precision).
ArtifactPtr resnet_profile() {
  static ArtifactPtr profile = [] {
    Ran ran = run_stage("profiler", {{"warmup", 1}, {"repeats", 5}, {"trace", false}}, {{"model", resnet()}});
    REQUIRE_MESSAGE(ran.status.is_ok(), ran.status.to_string());
    return ran.context->outputs().at("profile");
  }();
  return profile;
}

Json fmnist(const std::string& split) {
  return Json{{"format", "idx"},
              {"images", (kFashionMnist / (split + "-images-idx3-ubyte.gz")).string()},
              {"labels", (kFashionMnist / (split + "-labels-idx1-ubyte.gz")).string()},
              {"mean", {0.2860}},
              {"std", {0.3530}}};
}

Ran analyse(Json with, const fs::path& work = fs::temp_directory_path()) {
  return run_stage("analysis", with, {{"model", resnet()}, {"profile", resnet_profile()}}, work);
}

std::string reply_with(const Json& layers) {
  return Json{{"layers", layers}, {"summary", "scripted"}}.dump();
}

Json prune_entry(const std::string& layer, double ratio) {
  return Json{
      {"layer", layer}, {"action", "prune"}, {"ratio", ratio}, {"scheme", nullptr}, {"reason", "scripted"}};
}

std::vector<std::string> planned_groups(const Json& plan) {
  std::vector<std::string> names;
  for (auto it = plan["pruning"]["layers"].begin(); it != plan["pruning"]["layers"].end(); ++it)
    names.push_back(it.key());
  return names;
}

bool any_contains(const Json& messages, const std::string& part) {
  for (const Json& message : messages)
    if (message.get<std::string>().find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE(
    "the embedded planner's plan names real groups, varies by group under the cap, and prunes at a MAC "
    "target "
    "with its allocation kept") {
  Ran analysed = analyse({{"macs_reduction", 0.3}, {"max_ratio", 0.6}});
  REQUIRE_MESSAGE(analysed.status.is_ok(), analysed.status.to_string());
  const Json plan = analysed.output("plan");
  CHECK(plan["planner"]["backend"] == "heuristic");
  CHECK(plan["planner"]["fallback"] == false);
  CHECK(plan["planner"]["calls"].size() == 1);
  CHECK(plan["planner"]["warnings"].empty());
  std::vector<double> ratios;
  for (const Json& entry : plan["pruning"]["layers"]) {
    CHECK(entry["ratio"].get<double>() <= 0.6);
    ratios.push_back(entry["ratio"].get<double>());
  }
  REQUIRE(ratios.size() > 3);
  std::sort(ratios.begin(), ratios.end());
  CHECK(ratios.back() - ratios.front() > 0.1);  // not uniform
  const auto names = planned_groups(plan);
  CHECK(std::find(names.begin(), names.end(), "conv1") == names.end());  // the stem reads the input: ignored

  Ran pruned = run_stage("pruning", {{"macs_reduction", 0.3}},
                         {{"model", resnet()}, {"plan", analysed.context->outputs().at("plan")}});
  REQUIRE_MESSAGE(pruned.status.is_ok(), pruned.status.to_string());
  const Json history = pruned.output("history");
  CHECK(history["mode"] == "macs_target");
  CHECK(history["result"]["macs_reduction"].get<double>() >= 0.3 - 0.01);
  const double scale = history["search"]["rounds"][0]["plan_scale"].get<double>();
  CHECK(scale > 0.0);
  // Each group lost its plan ratio times the one searched factor (capped at 0.95), up to one unit.
  int compared = 0;
  for (const Json& group : history["groups"]) {
    const std::string name = group["name"].get<std::string>();
    if (!plan["pruning"]["layers"].contains(name)) continue;
    const double expected = std::min(0.95, scale * plan["pruning"]["layers"][name]["ratio"].get<double>());
    const double units = group["units"].get<double>();
    CHECK(std::abs(static_cast<double>(group["removed"].size()) / units - expected) <= 1.0 / units + 1e-9);
    ++compared;
  }
  CHECK(compared > 3);
}

TEST_CASE(
    "with a calibration set every offered group gets a measured sensitivity and the allocation follows "
    "benefit over sensitivity") {
  TempDir work("analysis_sensitivity");
  Ran analysed = analyse(
      {{"macs_reduction", 0.3}, {"calibration", fmnist("train")}, {"calibration_samples", 256}}, work.path());
  REQUIRE_MESSAGE(analysed.status.is_ok(), analysed.status.to_string());
  auto evidence = profagent::read_json(work.path() / "evidence.json");
  REQUIRE(evidence.is_ok());
  CHECK(evidence.value()["sensitivity_baseline"]["accuracy"].get<double>() > 0.8);
  const Json plan = analysed.output("plan");
  int measured = 0;
  const Json* most = nullptr;
  const Json* least = nullptr;
  for (const Json& group : evidence.value()["groups"]) {
    REQUIRE(group["sensitivity"].is_object());
    ++measured;
    const double loss = group["sensitivity"]["loss_increase"].get<double>();
    if (!most || loss > (*most)["sensitivity"]["loss_increase"].get<double>()) most = &group;
    if (!least || loss < (*least)["sensitivity"]["loss_increase"].get<double>()) least = &group;
  }
  CHECK(measured == static_cast<int>(plan["pruning"]["layers"].size()));
  // The most sensitive group loses less of itself than the least sensitive one.
  const double most_ratio =
      plan["pruning"]["layers"][(*most)["layer"].get<std::string>()]["ratio"].get<double>();
  const double least_ratio =
      plan["pruning"]["layers"][(*least)["layer"].get<std::string>()]["ratio"].get<double>();
  CHECK(most_ratio < least_ratio);
  // The reply schema and the prompts are in the work directory for whoever reads the run.
  CHECK(fs::exists(work.path() / "reply_schema.json"));
  auto prompt = profagent::read_file(work.path() / "prompt_user.txt");
  REQUIRE(prompt.is_ok());
  CHECK(prompt.value().find("\"sensitivity\"") != std::string::npos);
}

TEST_CASE(
    "malformed JSON, then a hallucinated layer, then a good reply with a reckless ratio: two re-asks quoting "
    "the errors, the clamp recorded") {
  Ran reference = analyse({});
  REQUIRE(reference.status.is_ok());
  const auto groups = planned_groups(reference.output("plan"));
  REQUIRE(groups.size() > 2);
  TempDir dir("analysis_scripted");
  const Json replies = Json::array(
      {Json{{"text",
             "Sure, here it is: {\"layers\": [{\"layer\": \"" + groups[0] + "\", \"action\": \"prune\""}},
       Json{{"text", "```json\n" + reply_with(Json::array({prune_entry(groups[0] + "x", 0.3)})) + "\n```"}},
       Json{{"text", reply_with(Json::array({prune_entry(groups[0], 0.99), prune_entry(groups[1], 0.2)}))}}});
  REQUIRE(profagent::write_json_atomic(dir.path() / "replies.json", replies).is_ok());
  Ran analysed = analyse({{"llm", "scripted"},
                          {"llm_config",
                           {{"replies", (dir.path() / "replies.json").string()},
                            {"record", (dir.path() / "requests.json").string()}}},
                          {"max_ratio", 0.5}});
  REQUIRE_MESSAGE(analysed.status.is_ok(), analysed.status.to_string());
  const Json plan = analysed.output("plan");
  CHECK(plan["planner"]["backend"] == "scripted");
  CHECK(plan["planner"]["fallback"] == false);
  CHECK(plan["planner"]["calls"].size() == 3);
  CHECK(plan["planner"]["reasks"] == 2);
  CHECK(plan["pruning"]["layers"][groups[0]]["ratio"].get<double>() == doctest::Approx(0.5));
  CHECK(plan["pruning"]["layers"][groups[1]]["ratio"].get<double>() == doctest::Approx(0.2));
  CHECK(plan["pruning"]["layers"].size() == 2);
  CHECK(any_contains(plan["planner"]["warnings"], "clamped to the cap max_ratio 0.5"));
  CHECK(any_contains(plan["planner"]["warnings"], "cut off"));

  auto requests = profagent::read_json(dir.path() / "requests.json");
  REQUIRE(requests.is_ok());
  REQUIRE(requests.value().size() == 3);
  const Json& third = requests.value()[2];
  CHECK(third["evidence"]["groups"].size() == groups.size());
  CHECK(third["schema"]["additionalProperties"] == false);
  const std::string reask = third["messages"].back()["content"].get<std::string>();
  CHECK(reask.find("did you mean \"" + groups[0] + "\"") != std::string::npos);
  CHECK(third["messages"].size() == 6);  // system, user, then (assistant, re-ask) twice
}

TEST_CASE(
    "a refusal and a truncated reply exhaust the re-asks; the embedded planner answers, with the warning") {
  TempDir dir("analysis_fallback");
  const Json replies =
      Json::array({Json{{"text", ""}, {"refusal", "I can't help with that."}, {"finish_reason", "refusal"}},
                   Json{{"text", "{\"layers\": [{\"layer\": "}, {"finish_reason", "length"}}});
  REQUIRE(profagent::write_json_atomic(dir.path() / "replies.json", replies).is_ok());
  Ran analysed = analyse({{"llm", "scripted"},
                          {"llm_config", {{"replies", (dir.path() / "replies.json").string()}}},
                          {"max_reasks", 1}});
  REQUIRE_MESSAGE(analysed.status.is_ok(), analysed.status.to_string());
  const Json plan = analysed.output("plan");
  CHECK(plan["planner"]["fallback"] == true);
  CHECK(plan["planner"]["calls"].size() == 2);
  CHECK(any_contains(plan["planner"]["warnings"], "the model refused"));
  CHECK(any_contains(plan["planner"]["warnings"], "fallback to the embedded planner"));
  CHECK(any_contains(plan["planner"]["warnings"], "finish_reason 'length'"));
  CHECK(plan["pruning"]["layers"].size() > 3);  // the embedded planner's full plan

  // A backend that fails outright (its HTTP retries spent) falls back the same way.
  REQUIRE(
      profagent::write_json_atomic(dir.path() / "replies.json", Json::array({Json{{"error", "HTTP 503"}}}))
          .is_ok());
  Ran failed =
      analyse({{"llm", "scripted"}, {"llm_config", {{"replies", (dir.path() / "replies.json").string()}}}});
  REQUIRE_MESSAGE(failed.status.is_ok(), failed.status.to_string());
  CHECK(failed.output("plan")["planner"]["fallback"] == true);
  CHECK(any_contains(failed.output("plan")["planner"]["warnings"], "the backend failed: HTTP 503"));
}

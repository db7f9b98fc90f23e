// Unit tests of the tutorial's agent and criterion, out of tree, in the SDK's FakeAgentContext. The
// model is a real TorchScript module built in C++ (no file needed); the criterion's expected scores are
// worked out by hand.
#include <doctest/doctest.h>

#include <torch/script.h>

#include <profagent/testing/fake_agent_context.hpp>
#include <profagent/torch/importance.hpp>
#include <profagent/torch/model_artifact.hpp>

#include "geometric_median.hpp"
#include "layer_census.hpp"

using profagent::Json;
using profagent::testing::FakeAgentContext;
using profagent::testing::resolve_config;
using profagent::testing::run_agent;
namespace tk = profagent::torch_tk;

namespace {

// A root "Net" with a "Conv" (weight [4, 3, 3, 3] = 108) and a "Linear" (weight [10, 4] + bias [10] = 50).
std::shared_ptr<profagent::ModelArtifact> small_model() {
  torch::jit::Module conv("Conv");
  conv.register_parameter("weight", torch::randn({4, 3, 3, 3}), false);
  torch::jit::Module linear("Linear");
  linear.register_parameter("weight", torch::randn({10, 4}), false);
  linear.register_parameter("bias", torch::zeros({10}), false);
  torch::jit::Module net("Net");
  net.register_module("features", conv);
  net.register_module("classifier", linear);
  return std::make_shared<profagent::ModelArtifact>(std::make_shared<torch::jit::Module>(net), Json::object());
}

}  // namespace

TEST_CASE("layer_census counts parameters per module type and lists the largest layers") {
  auto factory = tutorial::layer_census_factory();
  FakeAgentContext context(resolve_config(factory, Json{{"top", 1}}));
  context.with_input("model", small_model());
  REQUIRE(run_agent(factory, context).is_ok());
  Json census = context.output("census")->summary();
  CHECK(census["modules"] == 3);
  CHECK(census["params"] == 158);
  REQUIRE(census["largest"].size() == 1);
  CHECK(census["largest"][0]["name"] == "features");
  CHECK(census["largest"][0]["params"] == 108);
  for (const Json& row : census["by_type"]) {
    if (row["type"] == "Linear") CHECK(row["params"] == 50);
    if (row["type"] == "Net") CHECK(row["params"] == 0);
  }
  CHECK(context.progress_count("modules") == 3);
  REQUIRE(context.phases().size() == 1);
  CHECK(context.phases()[0].first == "count");
}

TEST_CASE("layer_census refuses an input that is not a model") {
  auto factory = tutorial::layer_census_factory();
  FakeAgentContext context(resolve_config(factory, Json::object()));
  context.with_input("model", std::make_shared<profagent::JsonArtifact>("json", Json::object()));
  CHECK_FALSE(run_agent(factory, context).is_ok());
}

TEST_CASE("geometric_median scores each filter by its summed distance to the others") {
  FakeAgentContext context;
  context.with_provider(tutorial::geometric_median_factory());
  auto criterion = context.make_provider_as<tk::ImportanceCriterion>("importance", "geometric_median",
                                                                      Json{{"normalize", "none"}});
  REQUIRE(criterion.is_ok());
  // Three filters of two weights: (0,0), (1,0), (10,0). Distances: 1+10, 1+9, 10+9.
  tk::ImportanceGroup group{"conv", 3, {}};
  group.members.push_back({"conv.weight", torch::tensor({0.0, 0.0, 1.0, 0.0, 10.0, 0.0}).reshape({3, 2}), {}, 0,
                           {{0}, {1}, {2}}, tk::kRoleProducer, "conv"});
  auto scores = criterion.value()->score(group, tk::GroupReduction::kMean);
  REQUIRE(scores.is_ok());
  REQUIRE(scores.value().numel() == 3);
  CHECK(scores.value()[0].item<double>() == doctest::Approx(11.0).epsilon(1e-9));
  CHECK(scores.value()[1].item<double>() == doctest::Approx(10.0).epsilon(1e-9));
  CHECK(scores.value()[2].item<double>() == doctest::Approx(19.0).epsilon(1e-9));
  CHECK(tk::validate_scores(group, scores.value()).is_ok());
}

TEST_CASE("geometric_median rejects an unknown normalisation and a group without producers") {
  FakeAgentContext context;
  context.with_provider(tutorial::geometric_median_factory());
  CHECK_FALSE(context.make_provider_as<tk::ImportanceCriterion>("importance", "geometric_median",
                                                                Json{{"normalize", "median"}}).is_ok());
  auto criterion = context.make_provider_as<tk::ImportanceCriterion>("importance", "geometric_median", Json::object());
  REQUIRE(criterion.is_ok());
  tk::ImportanceGroup group{"fc", 2, {}};
  group.members.push_back({"fc.weight", torch::ones({3, 2}), {}, 1, {{0}, {1}}, tk::kRoleConsumer, "linear"});
  CHECK_FALSE(criterion.value()->score(group, tk::GroupReduction::kMean).is_ok());
}

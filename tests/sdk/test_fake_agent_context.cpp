// The SDK's test kit for plugin authors: FakeAgentContext runs an agent outside a workflow, makes
// providers from a plugin's register function, and keeps outputs, phases and progress for the test;
// PhaseTimer records a phase once, on stop() or at the end of its scope.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "profagent/agent.hpp"
#include "profagent/plugin.hpp"
#include "profagent/testing/fake_agent_context.hpp"

using profagent::Agent;
using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Config;
using profagent::ConfigType;
using profagent::ErrorCode;
using profagent::Json;
using profagent::JsonArtifact;
using profagent::Provider;
using profagent::ProviderFactory;
using profagent::Registrar;
using profagent::Result;
using profagent::Status;
using profagent::testing::FakeAgentContext;
using profagent::testing::resolve_config;
namespace fs = std::filesystem;

namespace {

// A provider with a number in its config, and an agent that asks for it and times two phases.
class Scale : public Provider {
 public:
  explicit Scale(double factor) : factor(factor) {}
  double factor;
};

void register_scale_plugin(Registrar& registrar) {
  ProviderFactory scale;
  scale.id = "scale";
  scale.interface = "number";
  scale.config.add("factor", ConfigType::kFloat).default_value(2.0);
  scale.make = [](const Config& config) -> Result<std::unique_ptr<Provider>> {
    return std::unique_ptr<Provider>(std::make_unique<Scale>(config.get_float("factor")));
  };
  registrar.add_provider(std::move(scale));
}

class ScaleAgent : public Agent {
 public:
  explicit ScaleAgent(Config config) : config_(std::move(config)) {}
  Status run(AgentContext& context) override {
    double factor = 0;
    {
      auto making = context.phase("make provider");
      auto provider = context.make_provider_as<Scale>("number", config_.get_string("provider"), Json::object());
      if (!provider) return std::move(provider).take_status();
      factor = provider.value()->factor;
    }
    auto computing = context.phase("compute");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    double value = context.input("value")->summary()["value"].get<double>() * factor;
    computing.stop();
    context.progress("value", 1, 1);
    return context.set_output("value", std::make_shared<JsonArtifact>("json", Json{{"value", value}}));
  }

 private:
  Config config_;
};

AgentFactory scale_agent_factory() {
  AgentFactory factory;
  factory.id = "scale_agent";
  factory.role = "test";
  factory.inputs = {{"value", "json", "{value}"}};
  factory.outputs = {{"value", "json", "{value}"}};
  factory.config.add("provider", ConfigType::kString).default_value("scale");
  factory.make = [](const Config& config) -> Result<std::unique_ptr<Agent>> {
    return std::unique_ptr<Agent>(std::make_unique<ScaleAgent>(config));
  };
  return factory;
}

}  // namespace

TEST_CASE("an agent runs in the fake context with a provider from its plugin's register function") {
  AgentFactory factory = scale_agent_factory();
  FakeAgentContext context(resolve_config(factory, Json::object()), "scale");
  context.with_input("value", std::make_shared<JsonArtifact>("json", Json{{"value", 21.0}}))
      .with_plugin(register_scale_plugin);
  auto agent = profagent::make_agent(factory, context.config());
  REQUIRE(agent.is_ok());
  Status ran = agent.value()->execute(context, factory.id);
  REQUIRE_MESSAGE(ran.is_ok(), ran.to_string());
  REQUIRE(context.output("value"));
  CHECK(context.output_as<JsonArtifact>("value")->summary()["value"] == 42.0);
  REQUIRE(context.phases().size() == 2);
  CHECK(context.phases()[0].first == "make provider");
  CHECK(context.phases()[1].first == "compute");
  CHECK(context.phases()[1].second >= 0.02);
  CHECK(context.progress_count("value") == 1);
  CHECK(context.progress_count() == 1);
}

TEST_CASE("the fake context names a provider it does not have, and a bad config is refused by the schema") {
  AgentFactory factory = scale_agent_factory();
  FakeAgentContext context(resolve_config(factory, Json{{"provider", "scael"}}), "scale");
  context.with_input("value", std::make_shared<JsonArtifact>("json", Json{{"value", 1.0}}))
      .with_plugin(register_scale_plugin);
  Status ran = profagent::testing::run_agent(factory, context);
  CHECK(ran.code() == ErrorCode::kNotFound);
  CHECK(ran.message().find("no provider 'scael' of interface 'number'") != std::string::npos);
  CHECK_THROWS_AS(resolve_config(factory, Json{{"provder", "scale"}}), profagent::StatusError);
}

TEST_CASE("a phase recorded twice adds up, and a timer records once whether stopped or destroyed") {
  FakeAgentContext context;
  context.record_phase("load", 0.5);
  context.record_phase("save", 0.25);
  context.record_phase("load", 1.0);
  REQUIRE(context.phases().size() == 2);
  CHECK(context.phases()[0] == std::make_pair(std::string("load"), 1.5));
  {
    auto timer = context.phase("save");
    timer.stop();
  }  // already stopped: nothing more
  auto moved = [&] { return context.phase("moved"); }();
  moved.stop();
  REQUIRE(context.phases().size() == 3);
  CHECK(context.phases()[1].second >= 0.25);
  CHECK(context.phases()[1].second < 0.25 + 1.0);
}

TEST_CASE("the fake context's work directory exists while it lives and is removed after") {
  fs::path directory;
  {
    FakeAgentContext context;
    directory = context.work_dir();
    CHECK(fs::is_directory(directory));
  }
  CHECK_FALSE(fs::exists(directory));
}

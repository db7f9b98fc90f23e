// Unit tests of the example's agents, out of tree: the SDK's FakeAgentContext stands in for the
// kernel (config resolved by the agent's own schema, inputs given, outputs kept).
#include <doctest/doctest.h>

#include <profagent/testing/fake_agent_context.hpp>

#include "greeting_agents.hpp"

using profagent::Json;
using profagent::JsonArtifact;
using profagent::testing::FakeAgentContext;
using profagent::testing::resolve_config;
using profagent::testing::run_agent;  // made by the factory from the context's config, run as the kernel does

TEST_CASE("greet says hello as many times as configured") {
  auto factory = greeting::greet_factory();
  FakeAgentContext context(resolve_config(factory, Json{{"name", "tests"}, {"times", 2}}));
  REQUIRE(run_agent(factory, context).is_ok());
  CHECK(context.output("greeting")->summary()["text"] == "Hello, tests! Hello, tests!");
}

TEST_CASE("greet's schema requires a name and bounds times") {
  auto factory = greeting::greet_factory();
  CHECK_THROWS(resolve_config(factory, Json::object()));
  CHECK_THROWS(resolve_config(factory, Json{{"name", "x"}, {"times", 11}}));
}

TEST_CASE("shout upper-cases its input's text") {
  auto factory = greeting::shout_factory();
  FakeAgentContext context(resolve_config(factory, Json::object()));
  context.with_input("text", std::make_shared<JsonArtifact>("json", Json{{"text", "quiet, please"}}));
  REQUIRE(run_agent(factory, context).is_ok());
  CHECK(context.output("loud")->summary()["text"] == "QUIET, PLEASE");
}

// The example plugin's agents: `greet` and `shout` pass JSON artifacts, written only against the
// installed SDK contract (find_package(profagent); no LibTorch). greeting_plugin.cpp exports them;
// greeting_test.cpp tests them in the SDK's fake context.
#include "greeting_agents.hpp"

#include <algorithm>
#include <cctype>

namespace greeting {
namespace {

using profagent::AgentContext;
using profagent::Config;
using profagent::Json;
using profagent::JsonArtifact;
using profagent::Status;

// Says hello to `name`, `times` times.
class Greet : public profagent::Agent {
 public:
  explicit Greet(Config config) : config_(std::move(config)) {}
  Status run(AgentContext& context) override {
    std::string text;
    for (std::int64_t i = 0; i < config_.get_int("times"); ++i)
      text += (i ? " " : "") + std::string("Hello, ") + config_.get_string("name") + "!";
    context.log().info("greeting {}", config_.get_string("name"));
    return context.set_output("greeting", std::make_shared<JsonArtifact>("json", Json{{"text", text}}));
  }

 private:
  Config config_;
};

// Upper-cases the text of its input.
class Shout : public profagent::Agent {
 public:
  Status run(AgentContext& context) override {
    std::string text = context.input("text")->summary().value("text", "");
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
    return context.set_output("loud", std::make_shared<JsonArtifact>("json", Json{{"text", text}}));
  }
};

}  // namespace

profagent::AgentFactory greet_factory() {
  profagent::AgentFactory greet;
  greet.id = "greet";
  greet.role = "example";
  greet.summary = "Greets someone.";
  greet.outputs = {{"greeting", "json", "{text}"}};
  greet.config.add("name", profagent::ConfigType::kString).required().describe("who to greet");
  greet.config.add("times", profagent::ConfigType::kInt).default_value(1).range(1, 10).describe("how often");
  greet.make = [](const Config& config) -> profagent::Result<std::unique_ptr<profagent::Agent>> {
    return std::unique_ptr<profagent::Agent>(std::make_unique<Greet>(config));
  };
  return greet;
}

profagent::AgentFactory shout_factory() {
  profagent::AgentFactory shout;
  shout.id = "shout";
  shout.role = "example";
  shout.summary = "Upper-cases a text.";
  shout.inputs = {{"text", "json", "{text}"}};
  shout.outputs = {{"loud", "json", "{text}"}};
  shout.make = [](const Config&) -> profagent::Result<std::unique_ptr<profagent::Agent>> {
    return std::unique_ptr<profagent::Agent>(std::make_unique<Shout>());
  };
  return shout;
}

void register_greeting(profagent::Registrar& registrar) {
  registrar.add_agent(greet_factory());
  registrar.add_agent(shout_factory());
}

}  // namespace greeting

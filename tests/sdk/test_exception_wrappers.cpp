// The SDK's wrappers around plugin code (Agent::execute, make_agent, make_provider, save_artifact):
// whatever the plugin's code throws comes back as a Status with the message, and nothing is left
// half-written.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "profagent/agent.hpp"
#include "profagent/artifact.hpp"
#include "profagent/provider.hpp"
#include "profagent/version.hpp"
#include "test_support.hpp"

using profagent::Agent;
using profagent::AgentContext;
using profagent::AgentFactory;
using profagent::Config;
using profagent::ErrorCode;
using profagent::Json;
using profagent::ProviderFactory;
using profagent::Result;
using profagent::Status;
using profagent::StatusError;
using profagent::test::contains;
using profagent::test::TempDir;
using profagent::test::TestAgentContext;
namespace fs = std::filesystem;

namespace {

enum class Throw { kNothing, kStd, kInt, kConfigKey };

class ThrowingAgent : public Agent {
 public:
  explicit ThrowingAgent(Throw what) : what_(what) {}
  Status run(AgentContext& context) override {
    switch (what_) {
      case Throw::kNothing: return Status::ok();
      case Throw::kStd: throw std::runtime_error("boom");
      case Throw::kInt: throw 7;
      case Throw::kConfigKey: (void)context.config().get_float("ratio"); break;
    }
    return Status::ok();
  }

 private:
  Throw what_;
};

class ThrowingArtifact : public profagent::Artifact {
 public:
  explicit ThrowingArtifact(bool in_summary) : in_summary_(in_summary) {}
  std::string kind() const override { return "json"; }
  Json summary() const override {
    if (in_summary_) throw std::runtime_error("summary boom");
    return Json::object();
  }
  Status save(const fs::path& dir) const override {
    std::ofstream(dir / "part.json") << "{";
    if (!in_summary_) throw std::runtime_error("save boom");
    return Status::ok();
  }

 private:
  bool in_summary_;
};

// Nothing in `parent` at all: neither the artifact's directory nor a temporary sibling.
bool empty_dir(const fs::path& parent) { return fs::is_empty(parent); }

}  // namespace

TEST_CASE("the SDK contract lives in the ABI-tagged inline namespace and ABI major is 2") {
  static_assert(PROFAGENT_ABI_MAJOR == 2);
  CHECK(profagent::kAbiMajor == 2u);
  // Same entity under both spellings: source code keeps writing profagent::Agent.
  static_assert(std::is_same_v<profagent::Agent, profagent::abi_v2::Agent>);
  static_assert(std::is_same_v<profagent::Status, profagent::abi_v2::Status>);
}

TEST_CASE("Agent::execute turns what run() throws into a Status naming the agent") {
  TestAgentContext context(Config(), "stage");
  ThrowingAgent ok(Throw::kNothing);
  CHECK(ok.execute(context, "quiet").is_ok());

  ThrowingAgent std_throw(Throw::kStd);
  Status status = std_throw.execute(context, "prune");
  CHECK(status.code() == ErrorCode::kRuntime);
  CHECK(status.message() == "agent 'prune' threw: boom");

  ThrowingAgent int_throw(Throw::kInt);
  status = int_throw.execute(context, "prune");
  CHECK(status.code() == ErrorCode::kRuntime);
  CHECK(status.message() == "agent 'prune' threw a non-standard exception");

  // A Config getter's StatusError keeps its code, and its message names the key.
  ThrowingAgent getter(Throw::kConfigKey);
  status = getter.execute(context, "prune");
  CHECK(status.code() == ErrorCode::kNotFound);
  CHECK(status.message() == "agent 'prune' threw: config key 'ratio' is not set");
}

TEST_CASE("make_agent turns a throwing, missing or null-making factory into a Status") {
  AgentFactory factory;
  factory.id = "maker";
  auto missing = profagent::make_agent(factory, Config());
  REQUIRE_FALSE(missing.is_ok());
  CHECK(contains(missing.status().message(), "agent 'maker' has no make function"));

  factory.make = [](const Config&) -> Result<std::unique_ptr<Agent>> { throw std::runtime_error("make boom"); };
  auto thrown = profagent::make_agent(factory, Config());
  REQUIRE_FALSE(thrown.is_ok());
  CHECK(thrown.status().code() == ErrorCode::kRuntime);
  CHECK(thrown.status().message() == "making agent 'maker' threw: make boom");

  factory.make = [](const Config& config) -> Result<std::unique_ptr<Agent>> {
    (void)config.get_string("name");
    return std::unique_ptr<Agent>();
  };
  auto key = profagent::make_agent(factory, Config());
  REQUIRE_FALSE(key.is_ok());
  CHECK(key.status().message() == "making agent 'maker' threw: config key 'name' is not set");

  factory.make = [](const Config&) -> Result<std::unique_ptr<Agent>> { return std::unique_ptr<Agent>(); };
  auto null = profagent::make_agent(factory, Config());
  REQUIRE_FALSE(null.is_ok());
  CHECK(contains(null.status().message(), "made a null agent"));

  factory.make = [](const Config&) -> Result<std::unique_ptr<Agent>> {
    return std::unique_ptr<Agent>(std::make_unique<ThrowingAgent>(Throw::kNothing));
  };
  CHECK(profagent::make_agent(factory, Config()).is_ok());
}

TEST_CASE("make_provider turns a throwing provider factory into a Status") {
  ProviderFactory factory;
  factory.id = "thrower";
  factory.interface = "test";
  factory.make = [](const Config&) -> Result<std::unique_ptr<profagent::Provider>> { throw 1; };
  auto thrown = profagent::make_provider(factory, Config());
  REQUIRE_FALSE(thrown.is_ok());
  CHECK(thrown.status().message() == "making provider 'thrower' threw a non-standard exception");

  factory.make = [](const Config&) -> Result<std::unique_ptr<profagent::Provider>> {
    return std::make_unique<profagent::Provider>();
  };
  CHECK(profagent::make_provider(factory, Config()).is_ok());
}

TEST_CASE("save_artifact turns a throwing save() or summary() into a Status and leaves nothing behind") {
  TempDir dir;
  for (bool in_summary : {false, true}) {
    CAPTURE(in_summary);
    ThrowingArtifact artifact(in_summary);
    Status saved = profagent::save_artifact(artifact, dir.path() / "out");
    REQUIRE_FALSE(saved.is_ok());
    CHECK(saved.code() == ErrorCode::kRuntime);
    CHECK(saved.message() == (in_summary ? "the summary() of a 'json' artifact threw: summary boom"
                                         : "save() of a 'json' artifact threw: save boom"));
    REQUIRE(saved.context().size() == 1);
    CHECK(contains(saved.context()[0], "saving a 'json' artifact to "));
    CHECK(empty_dir(dir.path()));  // no out/, no .out.tmp-PID/ with the half-written part.json
  }
}

TEST_CASE("status_of_current_exception outside a catch block is an internal error, not a terminate") {
  Status status = profagent::status_of_current_exception("nothing");
  CHECK(status.code() == ErrorCode::kInternal);
}

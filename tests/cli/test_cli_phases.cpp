// Where a run's time goes: every first-party agent times its phases on the stage's context, and
// report.json's entry of each stage lists them ({phase, seconds}), adding up to the stage's seconds
// within 10%. Through the real profagent-run on the shipped prune_recover workflow (acquisition,
// evaluation, pruning, finetune) and profile workflow (shape_resolver, profiler) with the fixture
// ResNet, kept small.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;

namespace {

// Checks every stage entry of `report`: phases with names and non-negative seconds, whose sum is
// within 10% of the stage's seconds. Returns the agents whose stages it checked.
std::set<std::string> check_stage_phases(const Json& report) {
  std::set<std::string> agents;
  for (const Json& stage : report["stages"]) {
    INFO("stage entry: " << stage.dump());
    REQUIRE(stage.contains("phases"));
    // The kernel's own "save outputs" alone would mean the agent timed nothing.
    CHECK(stage["phases"].size() >= 2);
    double sum = 0;
    for (const Json& phase : stage["phases"]) {
      CHECK_FALSE(phase["phase"].get<std::string>().empty());
      CHECK(phase["seconds"].get<double>() >= 0);
      sum += phase["seconds"].get<double>();
    }
    const double seconds = stage["seconds"].get<double>();
    INFO("phases add up to " << sum << " s of " << seconds << " s");
    CHECK(std::abs(sum - seconds) <= 0.10 * seconds);
    agents.insert(stage["agent"].get<std::string>());
  }
  return agents;
}

}  // namespace

TEST_CASE("every first-party agent records phases that add up to its stage's time in report.json") {
  auto dir = scratch_dir("stage_phases");
  // The profiler's roofline cache goes to the scratch dir, not the user's ~/.cache.
  ::setenv("XDG_CACHE_HOME", (dir / "cache").c_str(), 1);
  const std::string source = PROFAGENT_SOURCE_DIR;
  const std::string model = source + "/tests/fixtures/models/resnet_fmnist.pt";

  auto pruned = run_profagent({source + "/workflows/prune_recover.yaml", "--output-dir", "prune_run", "--set",
                               "model=" + model, "--set", "limit=300", "--set", "train_limit=512"},
                              dir);
  INFO(pruned.err);
  REQUIRE(pruned.exit_code == 0);
  Json prune_report = Json::parse(slurp(dir / "prune_run" / "report.json"));
  std::set<std::string> agents = check_stage_phases(prune_report);

  auto profiled = run_profagent({source + "/workflows/profile.yaml", "--output-dir", "profile_run", "--set",
                                 "model=" + model, "--set", "repeats=5"},
                                dir);
  INFO(profiled.err);
  REQUIRE(profiled.exit_code == 0);
  Json profile_report = Json::parse(slurp(dir / "profile_run" / "report.json"));
  for (const std::string& agent : check_stage_phases(profile_report)) agents.insert(agent);
  // The profiler splits its dynamic profile: warm-up apart from the timed forwards.
  std::set<std::string> profiler_phases;
  for (const Json& stage : profile_report["stages"])
    if (stage["agent"] == "profiler")
      for (const Json& phase : stage["phases"]) profiler_phases.insert(phase["phase"].get<std::string>());
  for (const char* part : {"warm-up", "attribution forward", "timed forwards", "summary"})
    CHECK(profiler_phases.count(std::string("dynamic profile: ") + part) == 1);

  CHECK(agents == std::set<std::string>{"acquisition", "shape_resolver", "profiler", "evaluation", "pruning",
                                        "finetune"});
  // report.md shows them too.
  CHECK(slurp(dir / "prune_run" / "report.md").find("timed forwards") != std::string::npos);
}

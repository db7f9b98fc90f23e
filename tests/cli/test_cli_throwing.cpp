// Exceptions stay inside plugins: plugin code that throws at each place the kernel calls into a plugin
// (tests/fixtures/plugins/throwing, run with tests/fixtures/workflows/throwing/<case>.yaml) fails its
// stage with the exception's message and exit 1, never a crash; report.json says so too.
#include <doctest/doctest.h>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;
namespace fs = std::filesystem;

namespace {

struct ThrowingRun {
  ProcessResult result;
  fs::path run_dir;
  Json report;
};

ThrowingRun run_throwing(const std::string& name) {
  auto dir = scratch_dir("throwing_" + name);
  const fs::path workflow = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "workflows" / "throwing" / (name + ".yaml");
  ThrowingRun run;
  run.result = run_profagent({workflow.string(), "--output-dir", "run", "--plugin-path", fixture_plugin("throwing")}, dir);
  run.run_dir = dir / "run";
  if (fs::exists(run.run_dir / "report.json")) run.report = Json::parse(slurp(run.run_dir / "report.json"));
  return run;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Exit 1 (not a signal, not 3), the message on stderr with the stage named, and report.json: the run
// and its one stage failed with the message.
void check_failed_stage(const ThrowingRun& run, const std::string& message) {
  INFO("stderr:\n" << run.result.err);
  CHECK(run.result.exit_code == 1);
  CHECK(has(run.result.err, message));
  CHECK(has(run.result.err, "in stage 'boom'"));
  REQUIRE(run.report.is_object());
  CHECK(run.report["status"] == "failed");
  REQUIRE(run.report["stages"].size() == 1);
  CHECK(run.report["stages"][0]["id"] == "boom");
  CHECK(run.report["stages"][0]["status"] == "failed");
  CHECK(has(run.report["stages"][0]["error"].get<std::string>(), message));
  CHECK(has(run.report["error"].get<std::string>(), message));
  // A failed stage leaves no outputs and no stage.json.
  CHECK_FALSE(fs::exists(run.run_dir / "stages" / "boom" / "stage.json"));
  CHECK_FALSE(fs::exists(run.run_dir / "stages" / "boom" / "outputs" / "out"));
}

}  // namespace

TEST_CASE("an agent's run() that throws fails its stage with the message (exit 1), never a crash") {
  check_failed_stage(run_throwing("throws_in_run"), "agent 'throws_in_run' threw: boom from run");
}

TEST_CASE("an agent's run() that throws something not derived from std::exception fails its stage") {
  check_failed_stage(run_throwing("throws_non_standard"), "agent 'throws_in_run' threw a non-standard exception");
}

TEST_CASE("a Config getter that throws inside run() fails the stage naming the key") {
  check_failed_stage(run_throwing("throws_config_key"),
                     "agent 'throws_in_run' threw: config key 'undeclared_key' is not set");
}

TEST_CASE("an agent factory's make that throws fails the stage with the message") {
  check_failed_stage(run_throwing("throws_in_make"), "making agent 'throws_in_make' threw: boom from make");
}

TEST_CASE("an artifact's save() that throws fails the stage, leaving nothing half-written") {
  auto run = run_throwing("throws_in_save");
  check_failed_stage(run, "save() of a 'json' artifact threw: boom from save");
  // Neither the output directory nor its temporary sibling (with the half-written file) remain.
  const fs::path stage = run.run_dir / "stages" / "boom";
  if (fs::exists(stage / "outputs")) {
    for (const auto& entry : fs::recursive_directory_iterator(stage / "outputs"))
      CHECK_MESSAGE(false, "left behind: " << entry.path().string());
  }
}

TEST_CASE("a provider factory's make that throws, reached through make_provider, fails the stage") {
  check_failed_stage(run_throwing("provider_throws_in_make"),
                     "making provider 'throws_in_make' threw: boom from the provider's make");
}

TEST_CASE("a provider method that throws inside run() fails the stage through the run wrapper") {
  check_failed_stage(run_throwing("provider_throws_in_call"),
                     "agent 'uses_thrower' threw: boom from the provider's call");
}

// Interrupting a run with SIGINT leaves it resumable; --resume does not rerun completed stages.
// Secrets given through the environment never reach the run directory or the console.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;
namespace fs = std::filesystem;

namespace {
int count_lines_with(const std::string& text, const std::string& needle) {
  int count = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.find(needle) != std::string::npos) ++count;
  return count;
}
}  // namespace

TEST_CASE("a run interrupted by SIGINT is marked interrupted, and --resume does not rerun completed stages") {
  auto dir = scratch_dir("resume");
  write_text(dir / "wf.yaml", R"(version: 1
name: resumable
stages:
  - id: first
    agent: record
    with: { file: ran.txt }
  - id: wait
    agent: wait_for_file
    inputs: {}
    with: { file: go.txt, timeout: 60s }
  - id: refine
    loop:
      max_iterations: 2
      carry: { value: wait.out }
    stages:
      - id: inner
        agent: record
        inputs: { in: loop.value }
        with: { file: ran.txt }
  - id: last
    agent: record
    inputs: { in: refine.value }
    with: { file: ran.txt }
)");
  Process run({PROFAGENT_RUN_EXE, "wf.yaml", "--output-dir", "run", "--plugin-path", fixture_plugin("test_agents")},
              dir / "capture", dir);
  // Interrupt while the second stage waits.
  REQUIRE(wait_until([&] { return fs::exists(dir / "run" / "stages" / "wait" / "work"); }));
  run.signal(SIGINT);
  auto interrupted = run.wait();
  INFO(interrupted.err);
  CHECK(interrupted.exit_code == 130);
  CHECK(interrupted.err.find("--resume") != std::string::npos);
  Json report = Json::parse(slurp(dir / "run" / "report.json"));
  CHECK(report["status"] == "interrupted");
  CHECK(report["stages"][0]["status"] == "completed");
  CHECK(report["stages"][1]["status"] == "interrupted");
  CHECK(fs::exists(dir / "run" / "stages" / "first" / "stage.json"));
  CHECK_FALSE(fs::exists(dir / "run" / "stages" / "wait" / "stage.json"));
  CHECK(slurp(dir / "ran.txt") == "first 0\n");

  write_text(dir / "go.txt", "go");
  auto resumed = run_profagent({"--resume", "run", "--plugin-path", fixture_plugin("test_agents")}, dir);
  INFO(resumed.err);
  CHECK(resumed.exit_code == 0);
  // "first" ran once in all; the rest ran once, in the resumed run.
  CHECK(slurp(dir / "ran.txt") == "first 0\nrefine/inner 1\nrefine/inner 2\nlast 0\n");
  Json final_report = Json::parse(slurp(dir / "run" / "report.json"));
  CHECK(final_report["status"] == "completed");
  CHECK(final_report["stages"][0]["id"] == "first");
  CHECK(final_report["stages"][0]["resumed"] == true);
  CHECK(final_report["stages"][1]["status"] == "completed");
  CHECK_FALSE(final_report["stages"][1].contains("resumed"));

  // A second resume of a completed run reruns nothing.
  auto again = run_profagent({"--resume", "run", "--plugin-path", fixture_plugin("test_agents")}, dir);
  CHECK(again.exit_code == 0);
  CHECK(count_lines_with(slurp(dir / "ran.txt"), "first") == 1);
  CHECK(count_lines_with(slurp(dir / "ran.txt"), "inner") == 2);
}

TEST_CASE("a secret from the environment reaches the agent but never the run directory or the console") {
  auto dir = scratch_dir("secret");
  const std::string token = "sk-test-5f1b2c3d4e";
  write_text(dir / "wf.yaml", R"(version: 1
name: secret
stages:
  - id: call
    agent: uses_secret
    with: { token: "${env:PROFAGENT_TEST_TOKEN}" }
outputs: { out: call.out }
)");
  ::setenv("PROFAGENT_TEST_TOKEN", token.c_str(), 1);
  auto result = run_profagent({"wf.yaml", "--output-dir", "run", "--plugin-path", fixture_plugin("test_agents"),
                               "--log-level", "trace"},
                              dir);
  auto plan = run_profagent({"--plan", "wf.yaml", "--plugin-path", fixture_plugin("test_agents")}, dir);
  ::unsetenv("PROFAGENT_TEST_TOKEN");
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(Json::parse(slurp(dir / "run" / "outputs" / "out" / "data.json"))["length"] == token.size());
  CHECK(result.err.find(token) == std::string::npos);
  CHECK(plan.out.find(token) == std::string::npos);
  CHECK(plan.out.find("***") != std::string::npos);
  for (const auto& entry : fs::recursive_directory_iterator(dir / "run")) {
    if (!entry.is_regular_file()) continue;
    INFO(entry.path().string());
    CHECK(slurp(entry.path()).find(token) == std::string::npos);
  }
}

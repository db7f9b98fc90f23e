// Whole runs of profagent-run with the fixture agents: order, loops (until, decide, select), failures,
// typed --set, the run directory and report.json.
#include <doctest/doctest.h>

#include <map>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;
namespace fs = std::filesystem;

namespace {

struct Run {
  ProcessResult result;
  fs::path run_dir;
  Json report;
};

Run run_workflow(const std::string& name, const std::string& yaml, std::vector<std::string> extra = {}) {
  auto dir = scratch_dir(name);
  write_text(dir / "wf.yaml", yaml);
  std::vector<std::string> args = {"wf.yaml", "--output-dir", "run", "--plugin-path", fixture_plugin("test_agents")};
  args.insert(args.end(), extra.begin(), extra.end());
  Run run;
  run.result = run_profagent(args, dir);
  run.run_dir = dir / "run";
  if (fs::is_regular_file(run.run_dir / "report.json")) run.report = Json::parse(slurp(run.run_dir / "report.json"));
  return run;
}

Json output_summary(const Run& run, const std::string& name) {
  return Json::parse(slurp(run.run_dir / "outputs" / name / "artifact.json"))["summary"];
}

std::vector<std::string> stage_ids(const Json& report) {
  std::vector<std::string> ids;
  for (const auto& stage : report["stages"]) ids.push_back(stage["id"].get<std::string>());
  return ids;
}

}  // namespace

TEST_CASE("stages run in dependency order and report.json records each one's status and seconds") {
  auto run = run_workflow("order", R"(version: 1
name: order
stages:
  - id: total
    agent: add
    inputs: { a: left.out, b: right.value }
  - id: right
    agent: counter
    with: { step: 2 }
  - id: left
    agent: emit
    with: { data: { value: 40 } }
outputs: { total: total.sum }
)");
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  CHECK(stage_ids(run.report) == std::vector<std::string>{"right", "left", "total"});
  CHECK(run.report["status"] == "completed");
  for (const auto& stage : run.report["stages"]) {
    CHECK(stage["status"] == "completed");
    CHECK(stage["seconds"].get<double>() >= 0);
  }
  CHECK(output_summary(run, "total")["value"] == 42);
  CHECK(fs::exists(run.run_dir / "workflow.yaml"));
  CHECK(fs::exists(run.run_dir / "resolved.json"));
  CHECK(fs::exists(run.run_dir / "logs" / "run.log"));
  CHECK(fs::exists(run.run_dir / "stages" / "total" / "stage.json"));
  CHECK(fs::exists(run.run_dir / "stages" / "total" / "outputs" / "sum" / "data.json"));
  // progress on stderr: stage i/n and a summary table
  CHECK(run.result.err.find("[3/3] total (add)") != std::string::npos);
  CHECK(run.result.err.find("run completed") != std::string::npos);
}

TEST_CASE("a stage's timed phases, and the kernel's saving of its outputs, reach report.json and report.md") {
  auto run = run_workflow("phases", R"(version: 1
name: phases
stages:
  - id: slow
    agent: counter
    with: { step: 1, delay: 300ms }
)");
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  const Json& stage = run.report["stages"][0];
  REQUIRE(stage["phases"].is_array());
  std::map<std::string, double> phases;
  for (const auto& phase : stage["phases"]) phases[phase["phase"].get<std::string>()] = phase["seconds"];
  REQUIRE(phases.count("wait") == 1);
  REQUIRE(phases.count("save outputs") == 1);  // the kernel's own phase
  double seconds = stage["seconds"].get<double>();
  // The agent's 300 ms wait is its phase (sleep overshoots, never undershoots), and the phases fit in
  // the stage's wall time.
  CHECK(phases["wait"] >= 0.3);
  CHECK(phases["wait"] <= seconds);
  CHECK(phases["wait"] + phases["save outputs"] <= seconds * 1.0001);
  std::string markdown = slurp(run.run_dir / "report.md");
  CHECK(markdown.find("where the time went") != std::string::npos);
  CHECK(markdown.find("wait 0.3") != std::string::npos);
}

TEST_CASE("a run whose final report.json cannot be written fails with exit 1 and says why") {
  auto run = run_workflow("report_blocked", R"(version: 1
name: report-blocked
stages:
  - id: block
    agent: block_report
)");
  CHECK(run.result.exit_code == 1);
  CHECK(run.result.err.find("could not write report.json") != std::string::npos);
  CHECK(run.result.err.find("writing the final report") != std::string::npos);
  CHECK(fs::is_directory(run.run_dir / "report.json"));
}

TEST_CASE("a loop carries its state and stops when its until condition holds") {
  auto run = run_workflow("loop_until", R"(version: 1
name: loop-until
stages:
  - id: start
    agent: emit
    with: { data: { value: 0 } }
  - id: refine
    loop:
      max_iterations: 10
      carry: { value: start.out }
      next: { value: step.value }
      until: "step.value.value >= 6 and loop.iteration >= 1"
    stages:
      - id: step
        agent: counter
        inputs: { value: loop.value }
        with: { step: 2 }
outputs: { value: refine.value, history: refine.history }
)");
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  CHECK(output_summary(run, "value")["value"] == 6);
  Json history = output_summary(run, "history");
  CHECK(history["iterations"].size() == 3);
  CHECK(history["stop_reason"].get<std::string>().find("until") != std::string::npos);
  CHECK(history["iterations"][2]["outputs"]["step.value"]["value"] == 6);
  CHECK(fs::exists(run.run_dir / "stages" / "refine" / "003" / "step" / "stage.json"));
  CHECK(run.result.err.find("refine: iteration 3/10") != std::string::npos);
}

TEST_CASE("a loop's decide agent stops it and can select an earlier iteration's state") {
  auto run = run_workflow("loop_decide", R"(version: 1
name: loop-decide
vars: { step: -1, stop_after: 3 }
stages:
  - id: start
    agent: emit
    with: { data: { value: 10 } }
  - id: refine
    loop:
      max_iterations: 8
      carry: { value: start.out }
      next: { value: step.value }
      decide: { agent: judge, with: { stop_after: "${vars.stop_after}", select: best } }
    stages:
      - id: step
        agent: counter
        inputs: { value: loop.value }
        with: { step: "${vars.step}" }
outputs: { value: refine.value, history: refine.history }
)");
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  Json history = output_summary(run, "history");
  CHECK(history["iterations"].size() == 3);          // judge stopped it after 3
  CHECK(history["selected"] == 1);                   // the highest value was iteration 1's
  CHECK(output_summary(run, "value")["value"] == 9);  // 10 - 1
  CHECK(history["iterations"][2]["decision"]["stop"] == true);
  CHECK(history["stop_reason"].get<std::string>().find("judge") != std::string::npos);
}

TEST_CASE("--set overrides a var with its type, and a value of the wrong type is refused before running") {
  const char* yaml = R"(version: 1
name: sets
vars: { step: 1 }
stages:
  - id: count
    agent: counter
    with: { step: "${vars.step}" }
outputs: { value: count.value }
)";
  auto run = run_workflow("set_typed", yaml, {"--set", "step=5"});
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  CHECK(output_summary(run, "value")["value"] == 5);

  auto bad = run_workflow("set_bad", yaml, {"--set", "step=many"});
  CHECK(bad.result.exit_code == 2);
  CHECK(bad.result.err.find("many") != std::string::npos);
  CHECK_FALSE(fs::exists(bad.run_dir));

  auto out_of_range = run_workflow("set_out_of_range", yaml, {"--set", "step=5000"});
  CHECK(out_of_range.result.exit_code == 2);
  CHECK(out_of_range.result.err.find("wf.yaml:7:19: stage 'count': with.step: 5000 is above the maximum 1000") != std::string::npos);
  CHECK(out_of_range.result.err.find("1000") != std::string::npos);
}

TEST_CASE("a failing agent fails the run with exit 1, its stage and location named, later stages not run") {
  auto run = run_workflow("failing", R"(version: 1
name: failing
stages:
  - id: first
    agent: emit
  - id: broken
    agent: fail
    with: { message: "the model exploded" }
  - id: after
    agent: record
    inputs: { in: broken.out }
    with: { file: never.txt }
)");
  CHECK(run.result.exit_code == 1);
  CHECK(run.result.err.find("the model exploded") != std::string::npos);
  CHECK(run.result.err.find("stage 'broken'") != std::string::npos);
  CHECK(run.result.err.find("wf.yaml:6:") != std::string::npos);
  CHECK(run.report["status"] == "failed");
  CHECK(stage_ids(run.report) == std::vector<std::string>{"first", "broken"});
  CHECK(run.report["stages"][1]["status"] == "failed");
  CHECK_FALSE(fs::exists(run.run_dir / "stages" / "broken" / "outputs"));
  CHECK_FALSE(fs::exists(run.run_dir.parent_path() / "never.txt"));
}

TEST_CASE("an exception thrown by an agent becomes a failed stage, not a crash") {
  auto run = run_workflow("throwing", R"(version: 1
name: throwing
stages:
  - id: boom
    agent: throws
)");
  CHECK(run.result.exit_code == 1);
  CHECK(run.result.err.find("agent 'throws' threw: thrown on purpose") != std::string::npos);
  CHECK(run.report["stages"][0]["status"] == "failed");
}

TEST_CASE("a non-empty output directory is refused so that no earlier run is overwritten") {
  auto dir = scratch_dir("nonempty_output");
  write_text(dir / "run" / "keep.txt", "precious");
  write_text(dir / "wf.yaml", "version: 1\nstages:\n  - { id: one, agent: emit }\n");
  auto result = run_profagent({"wf.yaml", "--output-dir", "run", "--plugin-path", fixture_plugin("test_agents")}, dir);
  CHECK(result.exit_code == 2);
  CHECK(result.err.find("not empty") != std::string::npos);
  CHECK(slurp(dir / "run" / "keep.txt") == "precious");
}

TEST_CASE("report.json lists every evaluation's metrics and lifts baseline and final with their change") {
  auto run = run_workflow("metrics_report", R"(version: 1
name: metrics
stages:
  - id: before
    agent: emit_metrics
    with: { accuracy: 0.9, latency_ms: 10 }
  - id: after
    agent: emit_metrics
    with: { accuracy: 0.88, latency_ms: 4 }
outputs: { baseline: before.metrics, final: after.metrics }
)");
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.report["metrics"]["before.metrics"]["accuracy"] == 0.9);
  CHECK(run.report["metrics"]["after.metrics"]["accuracy"] == 0.88);
  CHECK(run.report["baseline"]["accuracy"] == 0.9);
  CHECK(run.report["final"]["latency_ms"]["p50"] == 4);
  CHECK(run.report["change"]["accuracy"]["delta"].get<double>() == doctest::Approx(-0.02));
  CHECK(run.report["change"]["latency_ms"]["p50"]["ratio"].get<double>() == doctest::Approx(0.4));
}

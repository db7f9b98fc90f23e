// The shipped prune workflow on the fixture ResNet, through the real acquisition, shape_resolver,
// evaluation, pruning, importance and dataset plugins: report.json's baseline and final metrics and
// their change, the pruned model and its history on disk; and the same without a dataset.
#include <doctest/doctest.h>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;

namespace {

ProcessResult run_prune(const std::filesystem::path& dir, std::vector<std::string> sets) {
  const std::string source = PROFAGENT_SOURCE_DIR;
  std::vector<std::string> args = {source + "/workflows/prune.yaml", "--output-dir", "run", "--set",
                                   "model=" + source + "/tests/fixtures/models/resnet_fmnist.pt", "--set",
                                   "repeats=3"};
  for (auto& set : sets) {
    args.push_back("--set");
    args.push_back(set);
  }
  return run_profagent(args, dir);
}

}  // namespace

TEST_CASE("the shipped prune workflow reports a baseline and a smaller, faster-to-count final model") {
  auto dir = scratch_dir("prune_workflow");
  auto result = run_prune(dir, {"limit=300", "ratio=0.2", "round_to=4"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  Json report = Json::parse(slurp(dir / "run" / "report.json"));
  CHECK(report["status"] == "completed");
  const Json& baseline = report["baseline"];
  const Json& final = report["final"];
  for (const char* key : {"params", "macs", "size_bytes", "latency_ms", "accuracy"}) {
    CHECK_MESSAGE(baseline.contains(key), key);
    CHECK_MESSAGE(final.contains(key), key);
  }
  CHECK(baseline["samples"] == 300);
  CHECK(final["params"].get<long>() < baseline["params"].get<long>());
  CHECK(final["macs"].get<long>() < baseline["macs"].get<long>());
  CHECK(final["size_bytes"].get<long>() < baseline["size_bytes"].get<long>());
  CHECK(report["change"]["macs"]["ratio"].get<double>() < 0.9);
  CHECK(baseline["accuracy"].get<double>() > 0.9);
  // 20% of the channels of a trained model, without fine-tuning: worse, but still well above chance
  // (10%; about 70% here on these 300 samples).
  CHECK(final["accuracy"].get<double>() > 0.2);
  CHECK(final["agreement"]["samples"] == 300);

  const auto outputs = dir / "run" / "outputs";
  CHECK(std::filesystem::exists(outputs / "model" / "model.pt"));
  Json history = Json::parse(slurp(outputs / "history" / "data.json"));
  CHECK(history["format"] == "profagent.prune_history");
  CHECK(history["result"]["macs_after"] == final["macs"]);
  CHECK(history["groups"].size() > 0);
}

TEST_CASE("the prune workflow with an empty dataset measures everything but accuracy") {
  auto dir = scratch_dir("prune_workflow_no_data");
  auto result = run_prune(dir, {"dataset={}", "macs_reduction=0.2"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  Json report = Json::parse(slurp(dir / "run" / "report.json"));
  CHECK_FALSE(report["baseline"].contains("accuracy"));
  CHECK_FALSE(report["final"].contains("accuracy"));
  CHECK(report["final"]["agreement"]["inputs"] == "random");
  const double kept = report["final"]["macs"].get<double>() / report["baseline"]["macs"].get<double>();
  CHECK(kept <= 0.805);
  CHECK(kept > 0.75);
}

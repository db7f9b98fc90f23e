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

namespace {

// Runs python3 on `script` (written to dir/script.py) with `args`; its stdout.
ProcessResult run_python(const std::filesystem::path& dir, const std::string& script,
                         std::vector<std::string> args) {
  write_text(dir / "script.py", script);
  std::vector<std::string> argv = {"/usr/bin/python3", (dir / "script.py").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Process(argv, dir / "python", dir).wait();
}

}  // namespace

TEST_CASE("a scripted model whose forward returns a dict is evaluated, pruned and keeps its keys") {
  auto dir = scratch_dir("prune_dict_model");
  const std::string source = PROFAGENT_SOURCE_DIR;
  // The fixture ResNet wrapped by a module returning {"logits", "probs"}, scripted by python3-torch.
  auto made = run_python(dir, R"(
import sys
from typing import Dict
import torch
class DictOutput(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        logits = self.inner(x)
        return {"logits": logits, "probs": torch.softmax(logits, dim=1)}
torch.jit.script(DictOutput(torch.jit.load(sys.argv[1]).eval()).eval()).save(sys.argv[2])
)",
                         {source + "/tests/fixtures/models/resnet_fmnist.pt", (dir / "dict_model.pt").string()});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);

  auto result = run_profagent({source + "/workflows/prune.yaml", "--output-dir", "run", "--set",
                               "model=" + (dir / "dict_model.pt").string(), "--set", "input_shape=[1,1,28,28]",
                               "--set", "limit=200", "--set", "repeats=3", "--set", "ratio=0.2"},
                              dir);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  Json report = Json::parse(slurp(dir / "run" / "report.json"));
  // The default rule reads the prediction from the dict's "logits": a trained model's accuracy.
  CHECK(report["baseline"]["accuracy"].get<double>() > 0.9);
  CHECK(report["final"]["accuracy"].get<double>() > 0.2);
  CHECK(report["final"]["params"].get<long>() < report["baseline"]["params"].get<long>());
  CHECK(report["final"]["agreement"]["samples"] == 200);

  // Read back by python3-torch, independently of our loader: the pruned model still returns the dict.
  auto keys = run_python(dir, R"(
import sys
import torch
out = torch.jit.load(sys.argv[1])(torch.randn(2, 1, 28, 28))
print(",".join(sorted(out.keys())), list(out["logits"].shape), float(out["probs"].sum()))
)",
                         {(dir / "run" / "outputs" / "model" / "model.pt").string()});
  INFO(keys.err);
  REQUIRE(keys.exit_code == 0);
  CHECK(keys.out.rfind("logits,probs [2, 10] ", 0) == 0);
}

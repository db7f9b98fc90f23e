// The fixture models trained on Fashion-MNIST (tests/fixtures/models/) evaluated on the full test set
// by the shipped workflow, through the real acquisition, dataset and evaluation plugins.
#include <doctest/doctest.h>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;

TEST_CASE("the shipped evaluate_fixtures workflow reports at least 91 percent for the ResNet and 87 for the ViT") {
  auto dir = scratch_dir("evaluate_fixtures");
  const std::string source = PROFAGENT_SOURCE_DIR;
  auto result = run_profagent({source + "/workflows/evaluate_fixtures.yaml", "--output-dir", "run", "--set",
                               "resnet=" + source + "/tests/fixtures/models/resnet_fmnist.pt", "--set",
                               "vit=" + source + "/tests/fixtures/models/vit_fmnist.pt"},
                              dir);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  Json report = Json::parse(slurp(dir / "run" / "report.json"));
  const Json& resnet = report["metrics"]["evaluate_resnet.metrics"];
  const Json& vit = report["metrics"]["evaluate_vit.metrics"];
  CHECK(resnet["samples"] == 10000);
  CHECK(vit["samples"] == 10000);
  CHECK(resnet["accuracy"].get<double>() >= 0.91);
  CHECK(vit["accuracy"].get<double>() >= 0.87);
  CHECK(resnet["top5"].get<double>() >= resnet["accuracy"].get<double>());
  CHECK(report["outputs"]["resnet"]["accuracy"] == resnet["accuracy"]);
}

// `--set NAME=VALUE` from the command line, as a shell passes it: flow lists and maps reach a stage's
// config as lists and maps (vars declared null included, as in workflows/profile.yaml), and a malformed
// value exits 2 naming the --set and why.
#include <doctest/doctest.h>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;
namespace fs = std::filesystem;

namespace {

const char* const kWorkflow = R"(version: 1
name: sets
vars:
  shape: null     # as workflows/profile.yaml's input_shape
  config: null
  mean: [0.5]
  ratio: 0.2
stages:
  - id: publish
    agent: emit
    with: { data: { shape: "${vars.shape}", config: "${vars.config}", mean: "${vars.mean}", ratio: "${vars.ratio}" } }
outputs: { published: publish.out }
)";

ProcessResult run_with_sets(const fs::path& dir, const std::vector<std::string>& sets,
                            bool validate = false) {
  write_text(dir / "wf.yaml", kWorkflow);
  std::vector<std::string> args = {"wf.yaml", "--output-dir", "run", "--plugin-path",
                                   fixture_plugin("test_agents")};
  if (validate) args.push_back("--validate");
  for (const auto& set : sets) {
    args.push_back("--set");
    args.push_back(set);
  }
  return run_profagent(args, dir);
}

}  // namespace

TEST_CASE("--set with YAML flow lists, maps and numbers reaches the stage as typed values") {
  auto dir = scratch_dir("set_flow_values");
  auto result = run_with_sets(dir, {"shape=[1,3,224,224]", "config={normalize: sum, weights: [1, 2.5]}",
                                    "mean=[0.2860,0.2860,0.2860]", "ratio=3"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  Json data = Json::parse(slurp(dir / "run" / "outputs" / "published" / "artifact.json"))["summary"];
  CHECK(data["shape"] == Json::parse("[1, 3, 224, 224]"));
  CHECK(data["config"] == Json::parse(R"({"normalize": "sum", "weights": [1, 2.5]})"));
  CHECK(data["mean"] == Json::parse("[0.286, 0.286, 0.286]"));
  CHECK(data["ratio"].is_number_float());  // a float var stays a float when given "3"
  CHECK(data["ratio"] == Json(3.0));
}

TEST_CASE("a malformed or mistyped --set exits 2 naming the --set and why, and runs nothing") {
  auto dir = scratch_dir("set_malformed");
  auto unclosed = run_with_sets(dir, {"shape=[1,3,224"});
  CHECK(unclosed.exit_code == 2);
  CHECK(unclosed.err.find("--set shape=[1,3,224: not a YAML value: end of sequence flow not found") !=
        std::string::npos);
  auto block = run_with_sets(dir, {"config=normalize: sum"}, /*validate=*/true);
  CHECK(block.exit_code == 2);
  CHECK(block.err.find(
            "--set config=normalize: sum: reads as a YAML block map: write a flow map {key: value}") !=
        std::string::npos);
  auto mistyped = run_with_sets(dir, {"mean=0.5"});
  CHECK(mistyped.exit_code == 2);
  CHECK(mistyped.err.find("--set mean=0.5: var 'mean' is a list, '0.5' reads as a float") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(dir / "run"));
}

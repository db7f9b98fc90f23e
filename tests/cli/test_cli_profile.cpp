// The shipped profile workflow on a fixture model, through the real acquisition, shape_resolver and
// profiler plugins: the table on stdout, report.json, the profile document, the Chrome trace and
// report.md in the run directory; and a model path that does not exist.
#include <doctest/doctest.h>

#include <cstdlib>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
using profagent::Json;

namespace {
bool has(const std::string& text, const std::string& piece) { return text.find(piece) != std::string::npos; }
}  // namespace

TEST_CASE("the shipped profile workflow prints the top-layer table and writes the profile, trace and report.md") {
  auto dir = scratch_dir("profile_workflow");
  // The roofline cache goes to the scratch dir, not the user's ~/.cache.
  ::setenv("XDG_CACHE_HOME", (dir / "cache").c_str(), 1);
  const std::string source = PROFAGENT_SOURCE_DIR;
  auto result = run_profagent({source + "/workflows/profile.yaml", "--output-dir", "run", "--set",
                               "model=" + source + "/tests/fixtures/models/vit_fmnist.pt", "--set", "repeats=5"},
                              dir);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(has(result.out, "| # | layer | kind | params | MACs | latency ms | share % | intensity | bound |"));
  CHECK(has(result.out, "### Profile of"));

  const auto run = dir / "run";
  Json report = Json::parse(slurp(run / "report.json"));
  CHECK(report["status"] == "completed");
  const auto saved = run / "outputs" / "profile";
  Json profile = Json::parse(slurp(saved / "data.json"));
  CHECK(profile["total"]["params"] == 145290);
  CHECK(profile["input_shapes"][0]["shape"] == Json::array({1, 3, 28, 28}));  // from the file's metadata
  CHECK(profile["threads"] == 1);
  CHECK(profile["layers"].size() > 10);
  CHECK(std::filesystem::exists(dir / "cache" / "profagent" / "roofline.json"));

  Json trace = Json::parse(slurp(saved / "trace.json"));
  std::size_t ops = 0;
  for (const auto& layer : profile["layers"]) ops += layer["ops"].get<std::size_t>();
  CHECK(trace["traceEvents"].size() == ops);
  CHECK(has(trace["traceEvents"].dump(), "encoder.layers.encoder_layer_0.self_attention"));

  const std::string markdown = slurp(run / "report.md");
  CHECK(has(markdown, "# Run of profile"));
  CHECK(has(markdown, "| profile | profiler | completed |"));
  CHECK(has(markdown, "## profile.profile"));
  CHECK(has(markdown, profile["bottlenecks"][0]["name"].get<std::string>()));
}

TEST_CASE("the profile workflow on a model file that does not exist fails naming the file") {
  auto dir = scratch_dir("profile_missing_model");
  auto result = run_profagent({std::string(PROFAGENT_SOURCE_DIR) + "/workflows/profile.yaml", "--output-dir", "run",
                               "--set", "model=/nonexistent/model.pt"},
                              dir);
  CHECK(result.exit_code == 1);
  CHECK(has(result.err, "/nonexistent/model.pt"));
  CHECK(has(Json::parse(slurp(dir / "run" / "report.json")).dump(), "failed"));
}

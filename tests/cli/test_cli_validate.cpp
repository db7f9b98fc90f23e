// `profagent-run --validate` on every invalid workflow fixture: exit 2 and the fixture's expected
// "file:line:col: message", declared on the fixture's first line as "# expect: L:C: message". Also
// --plan, and workflow resources from the command line's point of view.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>

#include "cli/process.hpp"
#include "profagent/json.hpp"

using namespace profagent::test;
namespace fs = std::filesystem;

TEST_CASE("every invalid workflow fixture is refused by --validate with its file:line:col message") {
  auto dir = scratch_dir("validate_invalid");
  std::vector<fs::path> fixtures;
  for (const auto& entry : fs::directory_iterator(fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "workflows" / "invalid"))
    if (entry.path().extension() == ".yaml") fixtures.push_back(entry.path());
  std::sort(fixtures.begin(), fixtures.end());
  REQUIRE(fixtures.size() >= 10);

  for (const auto& fixture : fixtures) {
    std::string text = slurp(fixture);
    const std::string marker = "# expect: ";
    INFO(fixture.string() << " must start with its expect line");
    REQUIRE(text.rfind(marker, 0) == 0);
    std::string expected = text.substr(marker.size(), text.find('\n') - marker.size());
    std::string location = expected.substr(0, expected.find(": "));
    std::string message = expected.substr(expected.find(": ") + 2);

    auto result = run_profagent({"--validate", fixture.string(), "--plugin-path", fixture_plugin("test_agents")}, dir);
    INFO(fixture.filename().string() << "\nstderr:\n" << result.err);
    CHECK(result.exit_code == 2);
    std::string prefix = fixture.string() + ":" + location + ": ";
    auto at = result.err.find(prefix);
    CHECK(at != std::string::npos);
    if (at != std::string::npos) {
      std::string line = result.err.substr(at, result.err.find('\n', at) - at);
      CHECK(line.find(message) != std::string::npos);
    }
  }
  CHECK_FALSE(fs::exists(dir / "runs"));
}

TEST_CASE("--validate accepts a valid workflow and --plan prints its stages in order without running") {
  auto dir = scratch_dir("validate_valid");
  write_text(dir / "wf.yaml", R"(version: 1
name: ordered
stages:
  - id: total
    agent: add
    inputs: { a: left, b: right.value }
  - id: right
    agent: counter
    with: { step: 2 }
  - id: left
    agent: emit
)");
  // "left" without a port is a dangling reference: the file above is invalid on purpose first.
  auto invalid = run_profagent({"--validate", "wf.yaml", "--plugin-path", fixture_plugin("test_agents")}, dir);
  CHECK(invalid.exit_code == 2);
  CHECK(invalid.err.find("wf.yaml:6:") != std::string::npos);

  write_text(dir / "wf.yaml", R"(version: 1
name: ordered
stages:
  - id: total
    agent: add
    inputs: { a: left.out, b: right.value }
  - id: right
    agent: counter
    with: { step: 2 }
  - id: left
    agent: emit
)");
  auto valid = run_profagent({"--validate", "wf.yaml", "--plugin-path", fixture_plugin("test_agents")}, dir);
  CHECK(valid.exit_code == 0);
  auto plan = run_profagent({"--plan", "wf.yaml", "--plugin-path", fixture_plugin("test_agents")}, dir);
  CHECK(plan.exit_code == 0);
  auto right = plan.out.find("1. right");
  auto left = plan.out.find("2. left");
  auto total = plan.out.find("3. total");
  CHECK(right != std::string::npos);
  CHECK(left != std::string::npos);
  CHECK(total != std::string::npos);
  CHECK(plan.out.find("inputs: a <- left.out, b <- right.value") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "runs"));
}

namespace {

// "line:col" of the first occurrence of `part` in `text` (1-based, as diagnostics print it).
std::string line_col(const std::string& text, const std::string& part) {
  auto at = text.find(part);
  REQUIRE(at != std::string::npos);
  auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n') + 1;
  auto line_start = text.rfind('\n', at);
  auto column = line_start == std::string::npos ? at + 1 : at - line_start;
  return std::to_string(line) + ":" + std::to_string(column);
}

}  // namespace

// Needs the real agent and dataset plugins next to profagent-run (a full build), or on
// PROFAGENT_PLUGIN_PATH.
TEST_CASE(
    "the shipped prune_recover workflow validates, and a misspelt resource in it is refused at its line and "
    "column") {
  auto dir = scratch_dir("validate_prune_recover");
  const fs::path shipped = fs::path(PROFAGENT_SOURCE_DIR) / "workflows" / "prune_recover.yaml";
  auto valid = run_profagent({"--validate", shipped.string()}, dir);
  INFO(valid.err);
  CHECK(valid.exit_code == 0);

  std::string text = slurp(shipped);
  const std::string reference = "\"${resources.fmnist_test}\"";
  REQUIRE(text.find(reference) != std::string::npos);
  text.replace(text.find(reference), reference.size(), "\"${resources.fmnist_tset}\"");
  write_text(dir / "wf.yaml", text);
  auto misspelt = run_profagent({"--validate", "wf.yaml"}, dir);
  INFO(misspelt.err);
  CHECK(misspelt.exit_code == 2);
  CHECK(misspelt.err.find("wf.yaml:" + line_col(text, "\"${resources.fmnist_tset}\"") +
                          ": unknown resource 'fmnist_tset' in ${resources.fmnist_tset} (did you mean "
                          "'fmnist_test'?)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "runs"));
}

TEST_CASE("a resource reaches the agent as its config while --plan and resolved.json show it redacted") {
  auto dir = scratch_dir("resources_run");
  setenv("PROFAGENT_TEST_RESOURCE_TOKEN", "s3cret-token", 1);
  write_text(dir / "wf.yaml", R"(version: 1
name: resources
vars: { root: /data }
resources:
  test_set:
    provider: dataset
    format: fake
    path: "${vars.root}/test"
    token: "${env:PROFAGENT_TEST_RESOURCE_TOKEN}"
stages:
  - id: e
    agent: emit
    with: { data: "${resources.test_set}" }
outputs: { data: e.out }
)");
  const std::vector<std::string> plugins = {"--plugin-path", fixture_plugin("test_agents")};
  std::vector<std::string> plan_args = {"--plan", "wf.yaml"};
  plan_args.insert(plan_args.end(), plugins.begin(), plugins.end());
  auto plan = run_profagent(plan_args, dir);
  INFO(plan.err);
  CHECK(plan.exit_code == 0);
  CHECK(
      plan.out.find(
          R"(resource test_set: {"provider":"dataset","format":"fake","path":"/data/test","size":10,"token":"***"})") !=
      std::string::npos);
  CHECK(plan.out.find(R"(with: {"data":{"format":"fake","path":"/data/test","size":10,"token":"***"}})") !=
        std::string::npos);
  CHECK(plan.out.find("s3cret-token") == std::string::npos);

  std::vector<std::string> run_args = {"wf.yaml", "--output-dir", "run"};
  run_args.insert(run_args.end(), plugins.begin(), plugins.end());
  auto run = run_profagent(run_args, dir);
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  profagent::Json resolved = profagent::Json::parse(slurp(dir / "run" / "resolved.json"));
  CHECK(resolved["resources"]["test_set"]["token"] == "***");
  CHECK(resolved["resources"]["test_set"]["provider"] == "dataset");
  CHECK(resolved["stages"][0]["with"]["data"]["token"] == "***");
  CHECK(resolved["stages"][0]["with"]["data"]["path"] == "/data/test");
  // The emit agent publishes what it was given: the resource's config, minus `provider:`.
  profagent::Json out =
      profagent::Json::parse(slurp(dir / "run" / "outputs" / "data" / "artifact.json"))["summary"];
  CHECK(out == profagent::Json{{"format", "fake"}, {"path", "/data/test"}, {"token", "s3cret-token"}});
  unsetenv("PROFAGENT_TEST_RESOURCE_TOKEN");
}

namespace {

// --validate on tests/fixtures/workflows/providers/NAME.yaml: exit 2, nothing run, and the message
// of the fixture's first line ("# expect: L:C: message") at that file:line:col. The fixture plugin
// test_agents is on the path (the llm backend `echo`, the agent `ask`); the first-party agents and
// providers come from the build's plugin directory.
void expect_refused_by_validate(const std::string& name) {
  auto dir = scratch_dir("validate_provider_" + name);
  const fs::path fixture = fs::path(PROFAGENT_TEST_FIXTURES_DIR) / "workflows" / "providers" / (name + ".yaml");
  std::string text = slurp(fixture);
  const std::string marker = "# expect: ";
  REQUIRE(text.rfind(marker, 0) == 0);
  std::string expected = text.substr(marker.size(), text.find('\n') - marker.size());
  auto result = run_profagent({"--validate", fixture.string(), "--plugin-path", fixture_plugin("test_agents")}, dir);
  INFO(result.err);
  CHECK(result.exit_code == 2);
  CHECK(result.err.find(fixture.string() + ":" + expected) != std::string::npos);
  CHECK(result.err.find("nothing was run") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "runs"));
}

}  // namespace

TEST_CASE("--validate refuses an unknown importance criterion at its line and column, with a suggestion") {
  expect_refused_by_validate("unknown_criterion");
}

TEST_CASE("--validate refuses a criterion_config key the criterion does not take, with a suggestion") {
  expect_refused_by_validate("bad_criterion_config_key");
}

TEST_CASE("--validate refuses an unknown dataset format in a stage's dataset block, with a suggestion") {
  expect_refused_by_validate("unknown_dataset_format");
}

TEST_CASE("--validate refuses an unknown LLM backend an agent names in its config, with a suggestion") {
  expect_refused_by_validate("unknown_llm_backend_in_config");
}

TEST_CASE("an agent naming an llm: entry gets that backend and the agent's own config on top of it") {
  auto dir = scratch_dir("provider_by_resource_run");
  write_text(dir / "wf.yaml", R"(version: 1
name: ask-planner
llm:
  planner: { backend: echo, temperature: 0.5 }
stages:
  - id: q
    agent: ask
    with: { backend: planner, backend_config: { model: echo-2 } }
outputs: { answer: q.out }
)");
  auto run = run_profagent({"wf.yaml", "--output-dir", "run", "--plugin-path", fixture_plugin("test_agents")}, dir);
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
}

// prune.yaml exposes the criterion's own config as a var; --set gives it, the validator checks it
// against the criterion's schema, and a wrong key is reported at the line that uses the var.
TEST_CASE("the shipped prune workflow takes criterion_config from --set and checks it against the criterion") {
  auto dir = scratch_dir("validate_prune_criterion_config");
  const fs::path shipped = fs::path(PROFAGENT_SOURCE_DIR) / "workflows" / "prune.yaml";
  auto valid = run_profagent(
      {"--validate", shipped.string(), "--set", "criterion=l2", "--set", "criterion_config={normalize: sum}"}, dir);
  INFO(valid.err);
  CHECK(valid.exit_code == 0);

  auto wrong = run_profagent(
      {"--validate", shipped.string(), "--set", "criterion=l2", "--set", "criterion_config={normalise: sum}"}, dir);
  INFO(wrong.err);
  CHECK(wrong.exit_code == 2);
  const std::string text = slurp(shipped);
  CHECK(wrong.err.find(shipped.string() + ":" + line_col(text, "\"${vars.criterion_config}\"") +
                       ": stage 'prune': with.criterion_config.normalise (importance provider 'l2'): unknown key "
                       "'normalise'") != std::string::npos);
  CHECK(wrong.err.find("did you mean 'normalize'?") != std::string::npos);

  auto misspelt = run_profagent({"--validate", shipped.string(), "--set", "criterion=tayler"}, dir);
  INFO(misspelt.err);
  CHECK(misspelt.exit_code == 2);
  CHECK(misspelt.err.find(shipped.string() + ":" + line_col(text, "\"${vars.criterion}\"") +
                          ": stage 'prune': with.criterion: unknown importance provider 'tayler' (did you mean "
                          "'taylor'?)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "runs"));

  // --describe says which keys name a provider and which configure it.
  auto described = run_profagent({"--describe", "pruning"}, dir);
  CHECK(described.out.find("names a 'importance' provider") != std::string::npos);
  CHECK(described.out.find("configures the provider 'criterion' names") != std::string::npos);
}

// `profagent-run --validate` on every invalid workflow fixture: exit 2 and the fixture's expected
// "file:line:col: message", declared on the fixture's first line as "# expect: L:C: message".
#include <doctest/doctest.h>

#include <algorithm>

#include "cli/process.hpp"

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

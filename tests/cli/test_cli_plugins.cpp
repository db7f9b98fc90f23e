// profagent-run's plugin-facing commands, driven as a user would: --version, --list-plugins,
// --describe, and the refusal of a bad plugin on the search path.
#include <doctest/doctest.h>

#include "cli/process.hpp"

using namespace profagent::test;

namespace {
const char* kTinyWorkflow = R"(version: 1
name: tiny
stages:
  - id: one
    agent: emit
    with: { data: { value: 1 } }
)";
}

TEST_CASE("--version prints the version, the plugin ABI and the build fingerprint") {
  auto dir = scratch_dir("version");
  auto result = run_profagent({"--version"}, dir);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("profagent-run 0.1.0") != std::string::npos);
  CHECK(result.out.find("plugin ABI 2.1") != std::string::npos);
  CHECK(result.out.find("torch=") != std::string::npos);
}

TEST_CASE("--help lists the commands and the exit codes") {
  auto dir = scratch_dir("help");
  auto result = run_profagent({"--help"}, dir);
  CHECK(result.exit_code == 0);
  for (const char* word : {"--validate", "--plan", "--list-plugins", "--describe", "--resume", "--set", "Exit codes"})
    CHECK_MESSAGE(result.out.find(word) != std::string::npos, word);
}

TEST_CASE("--list-plugins shows each plugin's id, version, roles and path, and a refused plugin's reason") {
  auto dir = scratch_dir("list_plugins");
  auto result = run_profagent({"--list-plugins", "--plugin-path", fixture_plugin("test_agents"), "--plugin-path",
                               fixture_plugin("abi_v1")},
                              dir);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("test_agents") != std::string::npos);
  CHECK(result.out.find("0.1.0") != std::string::npos);
  CHECK(result.out.find("agent:counter") != std::string::npos);
  CHECK(result.out.find(fixture_plugin("test_agents") + "/libtest_agents.so") != std::string::npos);
  CHECK(result.out.find("REFUSED") != std::string::npos);
  CHECK(result.out.find("libabi_v1.so") != std::string::npos);
  CHECK(result.out.find("ABI 2.1") != std::string::npos);
  CHECK(result.out.find("ABI 1.0") != std::string::npos);
}

TEST_CASE("--describe prints an agent's ports and config schema") {
  auto dir = scratch_dir("describe");
  auto result = run_profagent({"--describe", "counter", "--plugin-path", fixture_plugin("test_agents")}, dir);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("agent counter") != std::string::npos);
  CHECK(result.out.find("step") != std::string::npos);
  CHECK(result.out.find("min -1000") != std::string::npos);
  CHECK(result.out.find("\"additionalProperties\": false") != std::string::npos);

  auto unknown = run_profagent({"--describe", "nosuch", "--plugin-path", fixture_plugin("test_agents")}, dir);
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("no agent or provider 'nosuch'") != std::string::npos);
}

// abi_v1 declares ABI 1.0 (a plugin of the 1.x SDK); the kernel is ABI 2.1.
TEST_CASE("a wrong-ABI plugin on the search path stops a run with exit 3, naming both versions") {
  auto dir = scratch_dir("wrong_abi_run");
  write_text(dir / "wf.yaml", kTinyWorkflow);
  auto result = run_profagent({"wf.yaml", "--plugin-path", fixture_plugin("test_agents"), "--plugin-path",
                               fixture_plugin("abi_v1")},
                              dir);
  CHECK(result.exit_code == 3);
  CHECK(result.err.find("libabi_v1.so") != std::string::npos);
  CHECK(result.err.find("ABI 2.1") != std::string::npos);
  CHECK(result.err.find("ABI 1.0") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "runs"));  // nothing was run, nothing written
}

TEST_CASE("a plugin refused through PROFAGENT_PLUGIN_PATH also stops the run") {
  auto dir = scratch_dir("wrong_fingerprint_env");
  write_text(dir / "wf.yaml", kTinyWorkflow);
  ::setenv("PROFAGENT_PLUGIN_PATH", fixture_plugin("fingerprint_mismatch").c_str(), 1);
  auto result = run_profagent({"wf.yaml", "--plugin-path", fixture_plugin("test_agents")}, dir);
  ::unsetenv("PROFAGENT_PLUGIN_PATH");
  CHECK(result.exit_code == 3);
  CHECK(result.err.find("gcc-99.1") != std::string::npos);
}

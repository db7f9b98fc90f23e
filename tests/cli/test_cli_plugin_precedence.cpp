// Which copy of a plugin profagent-run uses when it finds one twice: --plugin-path and
// PROFAGENT_PLUGIN_PATH come before the installed plugins, a later copy is shadowed (listed, not
// loaded, not an error), and two copies in one directory are still a duplicate.
#include <doctest/doctest.h>

#include <cstdlib>

#include "cli/process.hpp"

using namespace profagent::test;
namespace fs = std::filesystem;

namespace {

std::string real_path(const fs::path& path) { return fs::canonical(path).string(); }

// The line of `text` that contains `part` (empty when none).
std::string line_with(const std::string& text, const std::string& part) {
  auto at = text.find(part);
  if (at == std::string::npos) return {};
  auto start = text.rfind('\n', at);
  start = start == std::string::npos ? 0 : start + 1;
  return text.substr(start, text.find('\n', at) - start);
}

}  // namespace

TEST_CASE("a rebuilt plugin on --plugin-path is used over the installed one, which --list-plugins shows shadowed") {
  auto dir = scratch_dir("precedence_installed");
  // The build's plugin directory is the installed one for profagent-run; a copy stands for a rebuild.
  const fs::path installed = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR) / "libshape_resolver.so";
  REQUIRE(fs::exists(installed));
  // First-party plugins find the SDK's libraries at $ORIGIN/../..: the copy gets a prefix of its own
  // whose lib/ links to the build's.
  const fs::path lib = fs::path(PROFAGENT_PLUGIN_OUTPUT_DIR).parent_path().parent_path();
  const fs::path plugins = dir / "rebuilt" / "lib" / "profagent" / "plugins";
  fs::create_directories(plugins);
  for (const auto& entry : fs::directory_iterator(lib))
    if (entry.path().filename().string().rfind("lib", 0) == 0 && !entry.is_directory())
      fs::create_symlink(entry.path(), dir / "rebuilt" / "lib" / entry.path().filename());
  fs::copy_file(installed, plugins / "libshape_resolver.so");
  const std::string rebuilt = real_path(plugins / "libshape_resolver.so");

  auto listed = run_profagent({"--list-plugins", "--plugin-path", plugins.string()}, dir);
  INFO(listed.out << listed.err);
  CHECK(listed.exit_code == 0);
  CHECK(line_with(listed.out, rebuilt).find("loaded") != std::string::npos);
  CHECK(line_with(listed.out, real_path(installed)).find("shadowed") != std::string::npos);
  CHECK(listed.out.find("shadowed by: " + rebuilt) != std::string::npos);
  CHECK(listed.out.find("REFUSED") == std::string::npos);

  auto described = run_profagent({"--describe", "shape_resolver", "--plugin-path", plugins.string()}, dir);
  CHECK(described.exit_code == 0);
  CHECK(described.out.find("from " + rebuilt) != std::string::npos);
}

TEST_CASE("--plugin-path comes before PROFAGENT_PLUGIN_PATH, and a run uses the first copy without error") {
  auto dir = scratch_dir("precedence_env");
  const fs::path library = fs::path(PROFAGENT_FIXTURE_PLUGIN_DIR) / "test_agents" / "libtest_agents.so";
  for (const char* name : {"flag", "env"}) {
    fs::create_directories(dir / name);
    fs::copy_file(library, dir / name / "libtest_agents.so");
  }
  const std::string flag = real_path(dir / "flag" / "libtest_agents.so");
  const std::string env = real_path(dir / "env" / "libtest_agents.so");
  write_text(dir / "wf.yaml", "version: 1\nname: tiny\nstages:\n  - { id: one, agent: emit, with: { data: { v: 1 } } }\n");

  ::setenv("PROFAGENT_PLUGIN_PATH", (dir / "env").string().c_str(), 1);
  auto listed = run_profagent({"--list-plugins", "--plugin-path", (dir / "flag").string()}, dir);
  auto described = run_profagent({"--describe", "emit", "--plugin-path", (dir / "flag").string()}, dir);
  auto run = run_profagent({"wf.yaml", "--output-dir", "run", "--log-level", "debug", "--plugin-path",
                            (dir / "flag").string()},
                           dir);
  auto env_only = run_profagent({"--describe", "emit"}, dir);
  ::unsetenv("PROFAGENT_PLUGIN_PATH");

  INFO(listed.out);
  CHECK(listed.exit_code == 0);
  CHECK(line_with(listed.out, flag).find("loaded") != std::string::npos);
  CHECK(line_with(listed.out, env).find("shadowed") != std::string::npos);
  CHECK(listed.out.find("shadowed by: " + flag) != std::string::npos);
  CHECK(described.out.find("from " + flag) != std::string::npos);
  INFO(run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.err.find("loaded plugin 'test_agents' 0.1.0 from " + flag) != std::string::npos);
  CHECK(run.err.find("is shadowed by " + flag) != std::string::npos);
  // Without the flag, the environment's copy is the one.
  CHECK(env_only.out.find("from " + env) != std::string::npos);
}

TEST_CASE("two copies of a plugin in one directory are still a duplicate: exit 3, both files named") {
  auto dir = scratch_dir("precedence_duplicate");
  const fs::path library = fs::path(PROFAGENT_FIXTURE_PLUGIN_DIR) / "test_agents" / "libtest_agents.so";
  fs::create_directories(dir / "plugins");
  fs::copy_file(library, dir / "plugins" / "liba_test_agents.so");
  fs::copy_file(library, dir / "plugins" / "libb_test_agents.so");
  write_text(dir / "wf.yaml", "version: 1\nname: tiny\nstages:\n  - { id: one, agent: emit }\n");
  auto run = run_profagent({"--validate", "wf.yaml", "--plugin-path", (dir / "plugins").string()}, dir);
  INFO(run.err);
  CHECK(run.exit_code == 3);
  CHECK(run.err.find("duplicate plugin id 'test_agents'") != std::string::npos);
  CHECK(run.err.find(real_path(dir / "plugins" / "liba_test_agents.so")) != std::string::npos);
  CHECK(run.err.find(real_path(dir / "plugins" / "libb_test_agents.so")) != std::string::npos);
}

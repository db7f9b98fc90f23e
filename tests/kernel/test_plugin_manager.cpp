// The plugin boundary as the kernel sees it: real fixture libraries (tests/fixtures/plugins/<name>)
// loaded through the PluginManager into a Registry, each bad one refused for the right reason.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/plugin.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using profagent::kernel::PluginManager;
using profagent::kernel::PluginRecord;
using profagent::kernel::Registry;

using profagent::test::contains;
using profagent::test::TempDir;
using profagent::test::TestAgentContext;

namespace {

std::string fixture_library(const std::string& name) {
  return std::string(PROFAGENT_FIXTURE_PLUGIN_DIR) + "/" + name + "/lib" + name + ".so";
}

std::string canonical(const std::string& path) { return fs::canonical(path).string(); }

// Saves a JSON artifact of `kind` holding {"saved": true} and loads it back: the loaded summary tells
// whether a plugin's loader for that kind is installed (the SDK's JSON fallback returns it unchanged).
profagent::Json round_trip_through_loader(const std::string& kind) {
  TempDir dir;
  fs::path artifact_dir = dir.path() / "artifact";
  profagent::JsonArtifact artifact(kind, profagent::Json{{"saved", true}});
  REQUIRE(profagent::save_artifact(artifact, artifact_dir).is_ok());
  auto loaded = profagent::load_artifact(artifact_dir);
  REQUIRE(loaded.is_ok());
  return loaded.value()->summary();
}

const std::string kBadFingerprint = "compiler=gcc-99.1;cxxabi=libstdc++-cxx11abi-1;torch=0.1.0";

}  // namespace

TEST_CASE("a plugin built for another ABI major is refused with both versions named") {
  Registry registry;
  PluginManager manager(registry);
  const PluginRecord& record = manager.load_file(fixture_library("abi_major_mismatch"));

  CHECK_FALSE(record.loaded);
  std::string plugin_abi = std::to_string(PROFAGENT_ABI_MAJOR + 1) + ".0";
  std::string kernel_abi = std::to_string(PROFAGENT_ABI_MAJOR) + "." + std::to_string(PROFAGENT_ABI_MINOR);
  CHECK(record.refusal ==
        "plugin ABI " + plugin_abi + " is not compatible with the kernel's ABI " + kernel_abi);
  CHECK(record.path == canonical(fixture_library("abi_major_mismatch")));
  // Nothing past the ABI fields is trusted from a descriptor of another major.
  CHECK(record.id.empty());
  REQUIRE(registry.refused().size() == 1);
  CHECK(registry.agents().empty());
}

TEST_CASE("a plugin of the 1.x SDK (ABI 1.0) is refused by the ABI 2 kernel, naming both versions") {
  static_assert(PROFAGENT_ABI_MAJOR == 2, "update this test and the abi_v1 fixture's story");
  Registry registry;
  PluginManager manager(registry);
  const PluginRecord& record = manager.load_file(fixture_library("abi_v1"));

  CHECK_FALSE(record.loaded);
  CHECK(record.refusal == "plugin ABI 1.0 is not compatible with the kernel's ABI 2.1");
  CHECK(record.id.empty());  // nothing past the version fields is read
  CHECK(registry.agents().empty());
}

TEST_CASE("a plugin built with another toolchain is refused with both full fingerprints named") {
  Registry registry;
  PluginManager manager(registry);
  const PluginRecord& record = manager.load_file(fixture_library("fingerprint_mismatch"));

  CHECK_FALSE(record.loaded);
  CHECK(record.id == "fingerprint_mismatch");
  CHECK(record.fingerprint == kBadFingerprint);
  CHECK(contains(record.refusal, "incompatible toolchain"));
  CHECK(contains(record.refusal, "'" + kBadFingerprint + "'"));
  CHECK(contains(record.refusal, "'" + profagent::kernel::kernel_build_fingerprint() + "'"));
  CHECK(contains(record.refusal, "compiler gcc-99.1"));
  CHECK(contains(record.refusal, "LibTorch 0.1.0"));
  CHECK(registry.agents().empty());
}

TEST_CASE("a library without the descriptor symbol is refused as not a profagent plugin") {
  Registry registry;
  PluginManager manager(registry);
  const PluginRecord& record = manager.load_file(fixture_library("no_entry_point"));

  CHECK_FALSE(record.loaded);
  CHECK(record.refusal == "no entry point 'profagent_plugin_descriptor': not a profagent plugin");
  CHECK(record.id.empty());
}

TEST_CASE("a file the dynamic loader cannot open is refused with the loader's message and its path") {
  TempDir dir;
  std::string not_elf = (dir.path() / "libnot_elf.so").string();
  std::ofstream(not_elf) << "this is not a shared library\n";
  std::string missing = (dir.path() / "libmissing.so").string();

  Registry registry;
  PluginManager manager(registry);
  const PluginRecord& garbage = manager.load_file(not_elf);
  CHECK_FALSE(garbage.loaded);
  std::string prefix = "cannot load library " + canonical(not_elf) + ": ";
  CHECK(garbage.refusal.rfind(prefix, 0) == 0);
  CHECK(garbage.refusal.size() > prefix.size());  // then dlerror's text, e.g. "file too short"

  const PluginRecord& absent = manager.load_file(missing);
  CHECK_FALSE(absent.loaded);
  CHECK(contains(absent.refusal, "cannot load library "));
  CHECK(contains(absent.refusal, "libmissing.so"));
  CHECK(contains(absent.refusal, "No such file"));
  CHECK(registry.refused().size() == 2);
}

TEST_CASE("a plugin whose register function throws after adding an agent leaves nothing registered") {
  Registry registry;
  PluginManager manager(registry);
  const PluginRecord& record = manager.load_file(fixture_library("throws_in_register"));

  CHECK_FALSE(record.loaded);
  CHECK(record.id == "throws_in_register");
  CHECK(contains(record.refusal, "failed to register"));
  CHECK(contains(record.refusal, "boom in register"));
  CHECK(registry.find_agent("half_registered") == nullptr);
  CHECK(registry.agents().empty());
  CHECK(record.roles.empty());
  CHECK(round_trip_through_loader("throws_in_register_note") == profagent::Json{{"saved", true}});
}

TEST_CASE("a plugin reusing another plugin's id is refused naming both files, and none of it is installed") {
  Registry registry;
  PluginManager manager(registry);
  std::string original = canonical(fixture_library("test_agents"));
  std::string duplicate = canonical(fixture_library("duplicate_id"));
  REQUIRE(manager.load_file(original).loaded);

  const PluginRecord& record = manager.load_file(duplicate);
  CHECK_FALSE(record.loaded);
  CHECK(contains(record.refusal, "duplicate plugin id 'test_agents'"));
  CHECK(contains(record.refusal, duplicate));
  CHECK(contains(record.refusal, original));
  // The first plugin keeps its agent; the refused one's loader never became visible.
  CHECK(registry.origin_of_agent("emit") == original);
  CHECK(round_trip_through_loader("duplicate_id_note") == profagent::Json{{"saved", true}});
}

TEST_CASE("a correct plugin is loaded with its id, version, SDK version, fingerprint and roles") {
  Registry registry;
  PluginManager manager(registry);
  const PluginRecord& record = manager.load_file(fixture_library("good_minimal"));

  REQUIRE(record.loaded);
  CHECK(record.refusal.empty());
  CHECK(record.id == "good_minimal");
  CHECK(record.version == "1.2.3");
  CHECK(record.sdk_version == PROFAGENT_SDK_VERSION);
  // good_minimal links only profagent::sdk: its fingerprint says so, and the kernel accepts it.
  CHECK(record.fingerprint == PROFAGENT_BUILD_FINGERPRINT);
  CHECK(contains(record.fingerprint, "torch=none"));
  CHECK(record.roles == std::vector<std::string>{"agent:noop", "provider:llm/echo_fixture"});
  CHECK(registry.refused().empty());
  CHECK(registry.origin_of_agent("noop") == canonical(fixture_library("good_minimal")));
}

TEST_CASE("a loaded plugin's agent runs with its default config and publishes a json artifact") {
  Registry registry;
  PluginManager manager(registry);
  REQUIRE(manager.load_file(fixture_library("good_minimal")).loaded);
  const profagent::AgentFactory* factory = registry.find_agent("noop");
  REQUIRE(factory != nullptr);
  CHECK(factory->inputs.empty());
  REQUIRE(factory->find_output("out") != nullptr);
  CHECK(factory->find_output("out")->kind == profagent::kinds::kJson);

  auto run_with = [&](const profagent::Json& with) {
    auto config = factory->config.resolve(with);
    REQUIRE(config.is_ok());
    auto agent = factory->make(config.value());
    REQUIRE(agent.is_ok());
    TestAgentContext context(config.value(), "noop_stage");
    REQUIRE(agent.value()->run(context).is_ok());
    REQUIRE(context.outputs().count("out") == 1);
    const auto& out = context.outputs().at("out");
    CHECK(out->kind() == profagent::kinds::kJson);
    return out->summary();
  };
  CHECK(run_with(profagent::Json::object()) == profagent::Json{{"message", "hi"}});
  CHECK(run_with(profagent::Json{{"message", "hello"}}) == profagent::Json{{"message", "hello"}});
}

TEST_CASE("a loaded plugin's provider is made through its factory") {
  Registry registry;
  PluginManager manager(registry);
  REQUIRE(manager.load_file(fixture_library("good_minimal")).loaded);
  const profagent::ProviderFactory* factory = registry.find_provider("llm", "echo_fixture");
  REQUIRE(factory != nullptr);
  auto config = factory->config.resolve(profagent::Json::object());
  REQUIRE(config.is_ok());
  auto provider = factory->make(config.value());
  REQUIRE(provider.is_ok());
  CHECK(provider.value() != nullptr);
}

TEST_CASE("an accepted plugin's artifact loaders are installed") {
  Registry registry;
  PluginManager manager(registry);
  REQUIRE(manager.load_file(fixture_library("good_minimal")).loaded);
  CHECK(round_trip_through_loader("good_minimal_note") == profagent::Json{{"loaded_by", "good_minimal"}});
}

TEST_CASE("a plugin adding an extension entry another plugin added is refused naming both files, and none of it is installed") {
  Registry registry;
  PluginManager manager(registry);
  std::string first = canonical(fixture_library("extension_first"));
  std::string second = canonical(fixture_library("extension_second"));
  const PluginRecord& accepted = manager.load_file(first);
  REQUIRE(accepted.loaded);
  CHECK(accepted.roles == std::vector<std::string>{"extension:fixture.point/shared"});
  CHECK(profagent::extension_origin("fixture.point", "shared") == first);
  const std::uint64_t generation = profagent::extensions_generation();

  const PluginRecord& record = manager.load_file(second);
  CHECK_FALSE(record.loaded);
  CHECK(contains(record.refusal, "duplicate extension 'fixture.point/shared'"));
  CHECK(contains(record.refusal, second));
  CHECK(contains(record.refusal, first));
  CHECK(record.roles.empty());
  // The first plugin keeps its entry; nothing of the refused one (agent, other entry) was installed.
  CHECK(registry.find_agent("extension_second_agent") == nullptr);
  profagent::ExtensionTable table = profagent::extensions("fixture.point");
  CHECK(table.size() == 1);
  REQUIRE(table.count("shared") == 1);
  CHECK(*std::static_pointer_cast<const std::string>(table.at("shared")) == "from extension_first");
  CHECK(profagent::extensions_generation() == generation);

  // The same file loaded by another plugin manager (another registry) is not a duplicate of itself.
  Registry other_registry;
  PluginManager other_manager(other_registry);
  CHECK(other_manager.load_file(first).loaded);
  CHECK(profagent::extension_origin("fixture.point", "shared") == first);
}

TEST_CASE("a directory on the search path is scanned for lib*.so files in name order") {
  TempDir dir;
  fs::copy_file(fixture_library("abi_major_mismatch"), dir.path() / "libc_abi.so");
  fs::copy_file(fixture_library("good_minimal"), dir.path() / "libb_good.so");
  fs::copy_file(fixture_library("no_entry_point"), dir.path() / "liba_no_entry.so");
  // Not plugin file names, or not files: skipped.
  fs::copy_file(fixture_library("no_entry_point"), dir.path() / "no_prefix.so");
  fs::copy_file(fixture_library("no_entry_point"), dir.path() / "libversioned.so.1");
  fs::create_directory(dir.path() / "libdirectory.so");

  Registry registry;
  PluginManager manager(registry);
  manager.add_search_path(dir.path().string());
  manager.load_all();

  const auto& plugins = registry.plugins();
  REQUIRE(plugins.size() == 3);
  std::string base = canonical(dir.path().string());
  CHECK(plugins[0].path == base + "/liba_no_entry.so");
  CHECK(plugins[1].path == base + "/libb_good.so");
  CHECK(plugins[2].path == base + "/libc_abi.so");
  CHECK_FALSE(plugins[0].loaded);
  CHECK(plugins[1].loaded);
  CHECK_FALSE(plugins[2].loaded);
  CHECK(registry.find_agent("noop") != nullptr);
}

TEST_CASE("a single library file on the search path is loaded, and a missing entry is skipped") {
  TempDir dir;
  Registry registry;
  PluginManager manager(registry);
  manager.add_search_path((dir.path() / "does_not_exist").string());
  manager.add_search_path(fixture_library("good_minimal"));
  CHECK(manager.search_path().size() == 2);
  manager.load_all();

  REQUIRE(registry.plugins().size() == 1);
  CHECK(registry.plugins()[0].id == "good_minimal");
  CHECK(registry.plugins()[0].loaded);
}

TEST_CASE("the same file reached several ways is loaded once") {
  TempDir dir;
  std::string library = fixture_library("good_minimal");
  fs::create_symlink(library, dir.path() / "libalias.so");
  std::string roundabout =
      std::string(PROFAGENT_FIXTURE_PLUGIN_DIR) + "/good_minimal/../good_minimal/libgood_minimal.so";

  Registry registry;
  PluginManager manager(registry);
  CHECK(manager.load_file(library).loaded);
  CHECK(manager.load_file(library).loaded);
  CHECK(manager.load_file((dir.path() / "libalias.so").string()).loaded);
  CHECK(manager.load_file(roundabout).loaded);
  manager.add_search_path(fs::path(library).parent_path().string());
  manager.load_all();
  manager.load_all();

  REQUIRE(registry.plugins().size() == 1);
  CHECK(registry.plugins()[0].path == canonical(library));
  CHECK(registry.refused().empty());  // no "duplicate plugin id" from loading itself again
}

TEST_CASE("a plugin id found again in a later search path entry is shadowed: not registered, not refused") {
  TempDir first, second;
  fs::copy_file(fixture_library("test_agents"), first.path() / "libtest_agents.so");
  // Another plugin with the same id (and a clashing agent id): under the first, it is not an error.
  fs::copy_file(fixture_library("duplicate_id"), second.path() / "libduplicate_id.so");
  const std::string winner = canonical((first.path() / "libtest_agents.so").string());
  const std::string loser = canonical((second.path() / "libduplicate_id.so").string());

  Registry registry;
  PluginManager manager(registry);
  manager.add_search_path(first.path().string());
  manager.add_search_path(second.path().string());
  manager.load_all();

  REQUIRE(registry.plugins().size() == 2);
  const PluginRecord& loaded = registry.plugins()[0];
  const PluginRecord& shadowed = registry.plugins()[1];
  CHECK(loaded.path == winner);
  CHECK(loaded.loaded);
  CHECK(shadowed.path == loser);
  CHECK(shadowed.id == "test_agents");
  CHECK(shadowed.version == "9.9.9");
  CHECK_FALSE(shadowed.loaded);
  CHECK(shadowed.shadowed_by == winner);
  CHECK(shadowed.refusal.empty());
  CHECK(registry.refused().empty());
  CHECK(registry.origin_of_agent("emit") == winner);
  // Its register function never ran: its artifact loader is not installed.
  CHECK(round_trip_through_loader("duplicate_id_note") == profagent::Json{{"saved", true}});
}

TEST_CASE("the earlier search path entry wins whichever copy it holds") {
  TempDir installed, fresh;
  fs::copy_file(fixture_library("good_minimal"), installed.path() / "libgood_minimal.so");
  fs::copy_file(fixture_library("good_minimal"), fresh.path() / "libgood_minimal.so");
  Registry registry;
  PluginManager manager(registry);
  manager.add_search_path(fresh.path().string());  // as the CLI adds --plugin-path before the install dir
  manager.add_search_path(installed.path().string());
  manager.load_all();

  REQUIRE(registry.plugins().size() == 2);
  CHECK(registry.plugins()[0].path == canonical((fresh.path() / "libgood_minimal.so").string()));
  CHECK(registry.plugins()[0].loaded);
  CHECK(registry.plugins()[1].shadowed_by == registry.plugins()[0].path);
  CHECK(registry.refused().empty());
  CHECK(registry.find_agent("noop") != nullptr);
}

TEST_CASE("the same plugin id twice within one directory stays a duplicate, refused naming both files") {
  TempDir dir;
  fs::copy_file(fixture_library("good_minimal"), dir.path() / "liba_good.so");
  fs::copy_file(fixture_library("good_minimal"), dir.path() / "libb_good_again.so");
  Registry registry;
  PluginManager manager(registry);
  manager.add_search_path(dir.path().string());
  manager.load_all();

  REQUIRE(registry.plugins().size() == 2);
  const PluginRecord& again = registry.plugins()[1];
  CHECK_FALSE(again.loaded);
  CHECK(again.shadowed_by.empty());
  CHECK(contains(again.refusal, "duplicate plugin id 'good_minimal'"));
  CHECK(contains(again.refusal, canonical((dir.path() / "liba_good.so").string())));
  CHECK(contains(again.refusal, canonical((dir.path() / "libb_good_again.so").string())));
  CHECK(registry.refused().size() == 1);
}

TEST_CASE("a refused file is refused once, however often it is loaded") {
  Registry registry;
  PluginManager manager(registry);
  manager.add_search_path(fixture_library("no_entry_point"));
  manager.load_all();
  manager.load_all();
  CHECK_FALSE(manager.load_file(fixture_library("no_entry_point")).loaded);
  CHECK(registry.refused().size() == 1);
}

TEST_CASE("fingerprints from the same toolchain are compatible") {
  using profagent::kernel::fingerprint_mismatch;
  const std::string kernel = "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1";
  CHECK(fingerprint_mismatch(kernel, kernel).empty());
  // Compiler minor and LibTorch patch releases keep the ABI.
  CHECK(fingerprint_mismatch(kernel, "compiler=gcc-12.3;cxxabi=libstdc++-cxx11abi-1;torch=1.13.0").empty());
  CHECK(
      fingerprint_mismatch(kernel, "torch=1.13.1+cpu;cxxabi=libstdc++-cxx11abi-1;compiler=gcc-12.1").empty());
  CHECK(fingerprint_mismatch(kernel, kernel + ";extra=ignored").empty());
}

TEST_CASE("fingerprints from another compiler major or family are incompatible and both are named") {
  using profagent::kernel::fingerprint_mismatch;
  const std::string kernel = "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1";
  const std::string gcc13 = "compiler=gcc-13.1;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1";
  std::string why = fingerprint_mismatch(kernel, gcc13);
  CHECK(contains(why, "compiler gcc-13.1 vs the kernel's gcc-12.2"));
  CHECK(contains(why, "'" + kernel + "'"));
  CHECK(contains(why, "'" + gcc13 + "'"));
  CHECK_FALSE(
      fingerprint_mismatch(kernel, "compiler=clang-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1").empty());
  CHECK_FALSE(
      fingerprint_mismatch(kernel, "compiler=gcc-1.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1").empty());
}

TEST_CASE("fingerprints with another C++ ABI or LibTorch minor are incompatible") {
  using profagent::kernel::fingerprint_mismatch;
  const std::string kernel = "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1";
  CHECK(contains(fingerprint_mismatch(kernel, "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-0;torch=1.13.1"),
                 "C++ ABI libstdc++-cxx11abi-0 vs the kernel's libstdc++-cxx11abi-1"));
  CHECK(contains(fingerprint_mismatch(kernel, "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.14.0"),
                 "LibTorch 1.14.0 vs the kernel's 1.13.1"));
  CHECK_FALSE(
      fingerprint_mismatch(kernel, "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=2.13.1").empty());
}

TEST_CASE("a plugin built without LibTorch is compatible with a kernel whose plugins use any LibTorch") {
  using profagent::kernel::fingerprint_mismatch;
  // torch=none: a plugin that exchanges JSON only (profagent::sdk); it has no tensor to disagree on.
  CHECK(fingerprint_mismatch("compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1",
                             "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=none")
            .empty());
  // Its compiler and C++ ABI are still checked.
  CHECK(contains(fingerprint_mismatch("compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1",
                                      "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-0;torch=none"),
                 "C++ ABI"));
}

TEST_CASE("a malformed fingerprint is a mismatch that shows it") {
  using profagent::kernel::fingerprint_mismatch;
  const std::string kernel = "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1";
  for (const std::string bad :
       {"", "garbage", "compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1",
        "compiler=;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1",
        "compiler=gcc-12.2;compiler=gcc-12.2;cxxabi=libstdc++-cxx11abi-1;torch=1.13.1"}) {
    CAPTURE(bad);
    std::string why = fingerprint_mismatch(kernel, bad);
    CHECK(contains(why, "malformed build fingerprint"));
    CHECK(contains(why, "plugin fingerprint '" + bad + "'"));
    CHECK(contains(why, "kernel fingerprint '" + kernel + "'"));
  }
}

TEST_CASE("the kernel's fingerprint names the LibTorch its build's torch libraries use") {
  // The kernel includes no LibTorch header: the build tells it the version CMake found.
  std::string fingerprint = profagent::kernel::kernel_build_fingerprint();
  CHECK_FALSE(contains(fingerprint, "torch=none"));
  CHECK(contains(fingerprint, std::string("torch=") + PROFAGENT_EXPECTED_TORCH_VERSION));
  // This test binary is built without LibTorch (torch=none), like a JSON-only plugin.
  CHECK(contains(PROFAGENT_BUILD_FINGERPRINT, "torch=none"));
  CHECK(profagent::kernel::fingerprint_mismatch(fingerprint, PROFAGENT_BUILD_FINGERPRINT).empty());
}

TEST_CASE("PROFAGENT_PLUGIN_PATH is read as colon-separated entries") {
  const char* saved = std::getenv("PROFAGENT_PLUGIN_PATH");
  std::optional<std::string> previous = saved ? std::optional<std::string>(saved) : std::nullopt;

  ::setenv("PROFAGENT_PLUGIN_PATH", "/a/plugins::/b/libx.so:", 1);
  CHECK(profagent::kernel::plugin_path_from_env() == std::vector<std::string>{"/a/plugins", "/b/libx.so"});
  ::unsetenv("PROFAGENT_PLUGIN_PATH");
  CHECK(profagent::kernel::plugin_path_from_env().empty());

  if (previous) ::setenv("PROFAGENT_PLUGIN_PATH", previous->c_str(), 1);
}

TEST_CASE("the default plugin directory is lib/profagent/plugins next to the executable's bin") {
  // The test binary lives in the build tree's bin/, which mirrors the install tree.
  auto dirs = profagent::kernel::default_plugin_dirs();
  bool built = fs::is_directory(PROFAGENT_PLUGIN_OUTPUT_DIR);
  bool listed =
      built && std::find(dirs.begin(), dirs.end(), canonical(PROFAGENT_PLUGIN_OUTPUT_DIR)) != dirs.end();
  CHECK(listed == built);
  for (const auto& dir : dirs) CHECK(fs::is_directory(dir));
}

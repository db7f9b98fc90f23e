// Real profagent-runs of a workflow whose stage calls an LLM backend (the llm_caller fixture agent,
// tests/fixtures/plugins/llm_caller) against the scripted vendor server: the API key never reaches
// a file of the run directory or the log (vars, --set, resolved.json, run.json, report, artifacts),
// a missing key stops the run before any stage with exit 2 naming the variable, --validate needs no key.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "profagent/fs.hpp"
#include "test_support.hpp"
#include "vendor_server.hpp"

namespace profagent::test {
namespace {

namespace fs = std::filesystem;
constexpr const char* kKey = "sk-run-test-9f8e7d6c5b4a39281706SECRET";

// The openai backend as an `llm:` entry; a var copies the key from the environment and the command
// line passes it again through --set, the two leaks resolved.json and run.json had.
std::string workflow_text() {
  return std::string("version: 1\nname: llm-secrets\n") + "plugin_paths: [\"" + PROFAGENT_FIXTURE_PLUGIN_DIR +
         "/llm_caller\"]\n"
         "vars:\n  base_url: http://127.0.0.1:1/v1\n  copied_key: \"${env:PROFAGENT_RUN_TEST_KEY}\"\n  note: none\n"
         "llm:\n  gpt: { backend: openai, model: gpt-4o, api_key_env: PROFAGENT_RUN_TEST_KEY, base_url: \"${vars.base_url}\" }\n"
         "stages:\n  - { id: ask, agent: llm_caller, with: { llm: gpt, prompt: \"plan ${vars.note}\" } }\n";
}

struct Ran {
  int exit_code;
  std::string output;
};

Ran run(const std::string& arguments, const fs::path& log) {
  const std::string command = std::string(PROFAGENT_RUN_EXE) + " " + arguments + " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  auto text = read_file(log);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.is_ok() ? text.value() : ""};
}

}  // namespace

TEST_CASE("a run with the openai backend leaves the API key in no file of the run directory and not in the log") {
  TempDir dir("llm_run");
  std::ofstream(dir.path() / "wf.yaml") << workflow_text();
  VendorServer server({{{"status", 500}}, {{"openai", {{"content", "{\"summary\": \"ok\"}"}}}}});
  setenv("PROFAGENT_RUN_TEST_KEY", kKey, 1);
  const fs::path run_dir = dir.path() / "run";
  Ran ran = run("'" + (dir.path() / "wf.yaml").string() + "' --log-level debug --output-dir '" + run_dir.string() +
                    "' --set base_url=" + server.base_url() + "/v1 --set note=" + kKey,
                dir.path() / "stdout.txt");
  unsetenv("PROFAGENT_RUN_TEST_KEY");
  REQUIRE_MESSAGE(ran.exit_code == 0, ran.output);
  // The key was used: the server got it.
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1]["headers"]["Authorization"] == std::string("Bearer ") + kKey);
  // The fixture logs its prompt, which holds the key (--set note): scrubbed on the console and in run.log.
  CHECK(contains(ran.output, "llm_caller: asking 'plan ***'"));
  CHECK_FALSE(contains(ran.output, kKey));
  auto run_log = read_file(run_dir / "logs" / "run.log");
  REQUIRE(run_log.is_ok());
  CHECK(contains(run_log.value(), "llm_caller: asking 'plan ***'"));
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(run_dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    auto text = read_file(entry.path());
    REQUIRE(text.is_ok());
    CHECK_MESSAGE(!contains(text.value(), kKey), (entry.path().string() + " holds the key"));
  }
  MESSAGE(files << " files of the run directory searched");
  CHECK(files >= 6);
  auto resolved = read_json(run_dir / "resolved.json");
  REQUIRE(resolved.is_ok());
  CHECK(resolved.value()["vars"]["copied_key"] == "***");
  CHECK(resolved.value()["vars"]["note"] == "***");
  auto run_json = read_json(run_dir / "run.json");
  REQUIRE(run_json.is_ok());
  CHECK(run_json.value()["redacted_sets"] == Json::array({"note"}));
  auto reply = read_json(run_dir / "stages/ask/outputs/reply/data.json");
  if (reply.is_ok()) CHECK(reply.value()["retries"] == 1);
  // A run whose --set held a secret cannot be resumed with it: said clearly.
  Ran resumed = run("--resume '" + run_dir.string() + "'", dir.path() / "resume.txt");
  CHECK(resumed.exit_code == 2);
  CHECK(contains(resumed.output, "--set note held a secret"));
}

TEST_CASE("without the key, --validate passes and the run exits 2 naming the variable before any stage") {
  TempDir dir("llm_run_nokey");
  unsetenv("PROFAGENT_RUN_TEST_KEY");
  // ${env:NAME} without a default is an error when NAME is unset, so the copied var gets one here.
  std::string text = workflow_text();
  const std::string copied = "${env:PROFAGENT_RUN_TEST_KEY}";
  text.replace(text.find(copied), copied.size(), "${env:PROFAGENT_RUN_TEST_KEY:-}");
  std::ofstream(dir.path() / "wf.yaml") << text;
  const std::string wf = "'" + (dir.path() / "wf.yaml").string() + "'";
  Ran validated = run(wf + " --validate", dir.path() / "validate.txt");
  CHECK_MESSAGE(validated.exit_code == 0, validated.output);
  const fs::path run_dir = dir.path() / "run";
  Ran ran = run(wf + " --output-dir '" + run_dir.string() + "'", dir.path() / "run.txt");
  CHECK(ran.exit_code == 2);
  CHECK(contains(ran.output, "PROFAGENT_RUN_TEST_KEY is not set"));
  CHECK(contains(ran.output, "stage 'ask'"));
  CHECK_FALSE(fs::exists(run_dir / "stages"));
}

TEST_CASE("Ctrl-C during an LLM call in flight stops the run within a second (exit 130)") {
  TempDir dir("llm_run_sigint");
  std::ofstream(dir.path() / "wf.yaml") << workflow_text();
  VendorServer server({{{"action", "hang"}}});  // the call would wait for read_timeout (120 s)
  setenv("PROFAGENT_RUN_TEST_KEY", kKey, 1);
  const std::string wf = (dir.path() / "wf.yaml").string(), out = (dir.path() / "run").string();
  const std::string set = "base_url=" + server.base_url() + "/v1", log = (dir.path() / "out.txt").string();
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log.c_str(), "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(126);
    execl(PROFAGENT_RUN_EXE, PROFAGENT_RUN_EXE, wf.c_str(), "--output-dir", out.c_str(), "--set", set.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  unsetenv("PROFAGENT_RUN_TEST_KEY");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server.requests().empty() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(server.requests().size() == 1);  // the call is in flight
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto interrupted = std::chrono::steady_clock::now();
  kill(pid, SIGINT);
  int status = 0;
  double seconds = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - interrupted).count();
    if (seconds > 10) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto output = read_file(log);
  MESSAGE("exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << " " << seconds << " s after SIGINT: "
                  << (output.is_ok() ? output.value() : ""));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(seconds < 1.0);
}

}  // namespace profagent::test

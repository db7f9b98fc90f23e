#pragma once
// Helpers shared by the unit tests: string checks, a self-removing temporary directory, and a test
// double of the kernel's AgentContext for driving an agent without the executor.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "profagent/agent.hpp"
#include "profagent/testing/fake_agent_context.hpp"
#include "profagent/kernel/registry.hpp"

namespace profagent::test {

inline bool contains(const std::string& text, const std::string& piece) {
  return text.find(piece) != std::string::npos;
}

inline bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// A fresh directory under the system temp dir, removed with everything in it at the end of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "profagent_test") {
    static std::atomic<int> counter{0};
    auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "_" + std::to_string(stamp) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The SDK's fake context as the first-party tests use it: providers from `registry` (the plugins a
// test loaded), scratch files in the system temp dir.
class TestAgentContext : public testing::FakeAgentContext {
 public:
  TestAgentContext(Config config, std::string stage_id, std::map<std::string, ArtifactPtr> inputs = {},
                   const kernel::Registry* registry = nullptr)
      : FakeAgentContext(std::move(config), std::move(stage_id)) {
    for (auto& [port, artifact] : inputs) with_input(port, std::move(artifact));
    with_work_dir(std::filesystem::temp_directory_path());
    if (registry)
      with_provider_lookup([registry](const std::string& interface, const std::string& id) {
        return registry->find_provider(interface, id);
      });
  }
};

}  // namespace profagent::test

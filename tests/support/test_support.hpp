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

// What a stage sees, minus the kernel: given inputs, collected outputs, a cancellation flag the
// test sets, progress calls counted by label, and providers from `registry` when one is given.
class TestAgentContext : public AgentContext {
 public:
  TestAgentContext(Config config, std::string stage_id, std::map<std::string, ArtifactPtr> inputs = {},
                   const kernel::Registry* registry = nullptr)
      : config_(std::move(config)),
        stage_id_(std::move(stage_id)),
        inputs_(std::move(inputs)),
        registry_(registry) {}

  const std::string& stage_id() const override { return stage_id_; }
  int iteration() const override { return 0; }
  const Config& config() const override { return config_; }
  ArtifactPtr input(const std::string& port) const override {
    auto it = inputs_.find(port);
    return it == inputs_.end() ? nullptr : it->second;
  }
  Status set_output(const std::string& port, ArtifactPtr artifact) override {
    if (!outputs_.emplace(port, std::move(artifact)).second)
      return Status(ErrorCode::kValidation, "output '" + port + "' set twice");
    return Status::ok();
  }
  std::filesystem::path work_dir() const override { return std::filesystem::temp_directory_path(); }
  std::filesystem::path run_dir() const override { return std::filesystem::temp_directory_path(); }
  bool cancelled() const override { return cancelled_; }
  void progress(const std::string& what, long, long) override { progress_calls_[what] += 1; }
  Result<std::unique_ptr<Provider>> make_provider(const std::string& interface, const std::string& id,
                                                  const Json& config) override {
    const ProviderFactory* factory = registry_ ? registry_->find_provider(interface, id) : nullptr;
    if (!factory) return Status(ErrorCode::kNotFound, "no provider '" + id + "' in this test");
    auto resolved = factory->config.resolve(config);
    if (!resolved) return std::move(resolved).take_status();
    return factory->make(resolved.value());
  }

  const std::map<std::string, ArtifactPtr>& outputs() const { return outputs_; }
  std::map<std::string, int> progress_calls_;
  bool cancelled_ = false;

 private:
  Config config_;
  std::string stage_id_;
  std::map<std::string, ArtifactPtr> inputs_;
  const kernel::Registry* registry_;
  std::map<std::string, ArtifactPtr> outputs_;
};

}  // namespace profagent::test

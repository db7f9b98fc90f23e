#pragma once
// The kernel's implementation of AgentContext for one stage execution.
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

class StageContext : public AgentContext {
 public:
  StageContext(std::string stage_id, int iteration, const AgentFactory& factory, Config config,
               std::map<std::string, ArtifactPtr> inputs, std::filesystem::path work_dir,
               std::filesystem::path run_dir, const Registry& registry, const Workflow& workflow);

  const std::string& stage_id() const override { return stage_id_; }
  int iteration() const override { return iteration_; }
  const Config& config() const override { return config_; }
  ArtifactPtr input(const std::string& port) const override;
  Status set_output(const std::string& port, ArtifactPtr artifact) override;
  std::filesystem::path work_dir() const override { return work_dir_; }
  std::filesystem::path run_dir() const override { return run_dir_; }
  bool cancelled() const override;
  void progress(const std::string& what, long done, long total) override;
  void record_phase(const std::string& name, double seconds) override;
  Result<std::unique_ptr<Provider>> make_provider(const std::string& interface, const std::string& provider_id,
                                                  const Json& config) override;

  // The phases recorded so far, in the order first recorded: [{phase, seconds}].
  Json phases_report() const;

  const std::map<std::string, ArtifactPtr>& outputs() const { return outputs_; }
  // Every non-optional output port was set.
  Status check_outputs_complete() const;

 private:
  std::string stage_id_;
  int iteration_;
  const AgentFactory& factory_;
  Config config_;
  std::map<std::string, ArtifactPtr> inputs_;
  std::map<std::string, ArtifactPtr> outputs_;
  std::filesystem::path work_dir_;
  std::filesystem::path run_dir_;
  const Registry& registry_;
  const Workflow& workflow_;
  std::chrono::steady_clock::time_point last_progress_{};
  std::string last_progress_what_;
  long last_progress_tenth_ = -1;
  std::vector<std::pair<std::string, double>> phases_;
};

}  // namespace profagent::kernel

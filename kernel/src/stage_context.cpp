#include "stage_context.hpp"

#include "provider_resolution.hpp"

#include "profagent/kernel/interrupt.hpp"
#include "profagent/log.hpp"
#include "profagent/phases.hpp"

namespace profagent::kernel {

StageContext::StageContext(std::string stage_id, int iteration, const AgentFactory& factory, Config config,
                           std::map<std::string, ArtifactPtr> inputs, std::filesystem::path work_dir,
                           std::filesystem::path run_dir, const Registry& registry, const Workflow& workflow)
    : stage_id_(std::move(stage_id)),
      iteration_(iteration),
      factory_(factory),
      config_(std::move(config)),
      inputs_(std::move(inputs)),
      work_dir_(std::move(work_dir)),
      run_dir_(std::move(run_dir)),
      registry_(registry),
      workflow_(workflow) {}

ArtifactPtr StageContext::input(const std::string& port) const {
  auto it = inputs_.find(port);
  return it == inputs_.end() ? nullptr : it->second;
}

Status StageContext::set_output(const std::string& port, ArtifactPtr artifact) {
  const PortSpec* spec = factory_.find_output(port);
  if (!spec) return Status(ErrorCode::kInvalidArgument, "agent '" + factory_.id + "' has no output port '" + port + "'");
  if (!artifact) return Status(ErrorCode::kInvalidArgument, "null artifact for output port '" + port + "'");
  if (spec->kind != kinds::kAny && artifact->kind() != spec->kind)
    return Status(ErrorCode::kValidation, "output port '" + port + "' is declared '" + spec->kind +
                                              "' but the agent published a '" + artifact->kind() + "' artifact");
  if (!outputs_.emplace(port, std::move(artifact)).second)
    return Status(ErrorCode::kInvalidArgument, "output port '" + port + "' was set twice");
  return Status::ok();
}

bool StageContext::cancelled() const { return interrupt_requested(); }

void StageContext::progress(const std::string& what, long done, long total) {
  // A line at each tenth of the work, at most one every 10 s otherwise, and always the last one:
  // a 20-minute training run then prints dozens of lines, not thousands.
  auto now = std::chrono::steady_clock::now();
  bool last = total > 0 && done >= total;
  long tenth = total > 0 ? done * 10 / total : -1;
  bool new_tenth = what != last_progress_what_ || tenth != last_progress_tenth_;
  bool due = now - last_progress_ >= std::chrono::seconds(10);
  if (!last && !new_tenth && !due) return;
  last_progress_ = now;
  last_progress_what_ = what;
  last_progress_tenth_ = tenth;
  if (total > 0)
    log().info("    {}: {} {}/{}", stage_id_, what, done, total);
  else
    log().info("    {}: {}", stage_id_, what);
}

void StageContext::record_phase(const std::string& name, double seconds) {
  log().debug("    {}: phase '{}' took {:.3f} s", stage_id_, name, seconds);
  add_phase(phases_, name, seconds);
}

Json StageContext::phases_report() const {
  Json phases = Json::array();
  for (const auto& [name, seconds] : phases_) phases.push_back({{"phase", name}, {"seconds", seconds}});
  return phases;
}

Result<std::unique_ptr<Provider>> StageContext::make_provider(const std::string& interface,
                                                              const std::string& provider_id, const Json& config) {
  return make_workflow_provider(workflow_, registry_, interface, provider_id, config);
}

Status StageContext::check_outputs_complete() const {
  for (const auto& port : factory_.outputs) {
    if (!port.optional && !outputs_.count(port.name))
      return Status(ErrorCode::kRuntime, "agent '" + factory_.id + "' finished without setting output '" + port.name + "'");
  }
  return Status::ok();
}

}  // namespace profagent::kernel

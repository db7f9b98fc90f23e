#include "profagent/testing/fake_agent_context.hpp"

#include <atomic>
#include <chrono>
#include <system_error>

#include "profagent/phases.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN
namespace testing {

namespace {
std::filesystem::path fresh_directory() {
  static std::atomic<int> counter{0};
  auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  auto path = std::filesystem::temp_directory_path() /
              ("profagent_fake_context_" + std::to_string(stamp) + "_" + std::to_string(counter++));
  std::filesystem::create_directories(path);
  return path;
}
}  // namespace

FakeAgentContext::FakeAgentContext(Config config, std::string stage_id)
    : config_(std::move(config)), stage_id_(std::move(stage_id)), owns_work_dir_(true), work_dir_(fresh_directory()) {}

FakeAgentContext::~FakeAgentContext() {
  if (!owns_work_dir_) return;
  std::error_code ignored;
  std::filesystem::remove_all(work_dir_, ignored);
}

FakeAgentContext& FakeAgentContext::with_input(const std::string& port, ArtifactPtr artifact) {
  inputs_[port] = std::move(artifact);
  return *this;
}

FakeAgentContext& FakeAgentContext::with_provider(ProviderFactory factory) {
  providers_.push_back(std::move(factory));
  return *this;
}

FakeAgentContext& FakeAgentContext::with_plugin(const std::function<void(Registrar&)>& register_function) {
  Registrar registrar;
  register_function(registrar);
  for (auto& factory : registrar.providers()) providers_.push_back(std::move(factory));
  return *this;
}

FakeAgentContext& FakeAgentContext::with_provider_lookup(ProviderLookup lookup) {
  lookup_ = std::move(lookup);
  return *this;
}

FakeAgentContext& FakeAgentContext::with_work_dir(std::filesystem::path directory) {
  if (owns_work_dir_) {
    std::error_code ignored;
    std::filesystem::remove_all(work_dir_, ignored);
  }
  owns_work_dir_ = false;
  work_dir_ = std::move(directory);
  return *this;
}

FakeAgentContext& FakeAgentContext::with_iteration(int iteration) {
  iteration_ = iteration;
  return *this;
}

ArtifactPtr FakeAgentContext::input(const std::string& port) const {
  auto it = inputs_.find(port);
  return it == inputs_.end() ? nullptr : it->second;
}

Status FakeAgentContext::set_output(const std::string& port, ArtifactPtr artifact) {
  if (!artifact) return Status(ErrorCode::kInvalidArgument, "null artifact for output port '" + port + "'");
  if (!outputs_.emplace(port, std::move(artifact)).second)
    return Status(ErrorCode::kInvalidArgument, "output port '" + port + "' was set twice");
  return Status::ok();
}

ArtifactPtr FakeAgentContext::output(const std::string& port) const {
  auto it = outputs_.find(port);
  return it == outputs_.end() ? nullptr : it->second;
}

void FakeAgentContext::progress(const std::string& what, long, long) { progress_calls_[what] += 1; }

int FakeAgentContext::progress_count(const std::string& label) const {
  auto it = progress_calls_.find(label);
  return it == progress_calls_.end() ? 0 : it->second;
}

int FakeAgentContext::progress_count() const {
  int total = 0;
  for (const auto& [label, count] : progress_calls_) total += count;
  return total;
}

void FakeAgentContext::record_phase(const std::string& name, double seconds) { add_phase(phases_, name, seconds); }

Result<std::unique_ptr<Provider>> FakeAgentContext::make_provider(const std::string& interface,
                                                                  const std::string& provider_id,
                                                                  const Json& config) {
  const ProviderFactory* factory = nullptr;
  for (const auto& candidate : providers_)
    if (candidate.interface == interface && candidate.id == provider_id) factory = &candidate;
  if (!factory && lookup_) factory = lookup_(interface, provider_id);
  if (!factory)
    return Status(ErrorCode::kNotFound,
                  "no provider '" + provider_id + "' of interface '" + interface + "' in this test context");
  auto resolved = factory->config.resolve(config.is_null() ? Json::object() : config);
  if (!resolved) return std::move(resolved).take_status().with_context("configuring provider '" + provider_id + "'");
  return profagent::make_provider(*factory, resolved.value());
}

Config resolve_config(const AgentFactory& factory, const Json& values) {
  auto resolved = factory.config.resolve(values);
  if (!resolved) throw StatusError(std::move(resolved).take_status());
  return std::move(resolved).value();
}

Status run_agent(const AgentFactory& factory, FakeAgentContext& context) {
  auto agent = make_agent(factory, context.config());
  if (!agent) return std::move(agent).take_status();
  return agent.value()->execute(context, factory.id);
}

}  // namespace testing
PROFAGENT_ABI_NAMESPACE_END

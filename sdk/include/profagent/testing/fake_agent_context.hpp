#pragma once
// A stand-in for the kernel's AgentContext, for unit tests of an agent or a provider outside a
// workflow (first-party tests and out-of-tree plugins alike). It hands the agent the inputs and the
// config you give it, keeps what the agent publishes, the phases it times and the progress it reports,
// and makes providers from factories you register (e.g. your plugin's, through its register function).
//
//   profagent::testing::FakeAgentContext context(config);
//   context.with_input("model", model).with_plugin(register_my_plugin);
//   CHECK(my_agent.execute(context, "my_agent").ok());
//   auto report = context.output_as<profagent::JsonArtifact>("report");
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "profagent/agent.hpp"
#include "profagent/plugin.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN
namespace testing {

class PROFAGENT_SDK_API FakeAgentContext : public AgentContext {
 public:
  // Finds a provider factory by interface and id; null when there is none.
  using ProviderLookup = std::function<const ProviderFactory*(const std::string& interface, const std::string& id)>;

  // `config` as the agent's factory would resolve it (use resolve_config() to apply its schema).
  explicit FakeAgentContext(Config config = Config(Json::object(), {}), std::string stage_id = "test");
  ~FakeAgentContext() override;  // removes the work directory it made, unless with_work_dir() gave one
  FakeAgentContext(const FakeAgentContext&) = delete;
  FakeAgentContext& operator=(const FakeAgentContext&) = delete;

  FakeAgentContext& with_input(const std::string& port, ArtifactPtr artifact);
  FakeAgentContext& with_provider(ProviderFactory factory);
  // Every provider a plugin's register function adds (the function you pass to PROFAGENT_PLUGIN).
  FakeAgentContext& with_plugin(const std::function<void(Registrar&)>& register_function);
  // Consulted after the providers added above, e.g. a test's loaded plugin registry.
  FakeAgentContext& with_provider_lookup(ProviderLookup lookup);
  FakeAgentContext& with_work_dir(std::filesystem::path directory);
  FakeAgentContext& with_iteration(int iteration);
  void cancel() { cancelled_ = true; }

  const std::string& stage_id() const override { return stage_id_; }
  int iteration() const override { return iteration_; }
  const Config& config() const override { return config_; }
  ArtifactPtr input(const std::string& port) const override;
  Status set_output(const std::string& port, ArtifactPtr artifact) override;
  std::filesystem::path work_dir() const override { return work_dir_; }
  std::filesystem::path run_dir() const override { return work_dir_; }
  bool cancelled() const override { return cancelled_; }
  void progress(const std::string& what, long done, long total) override;
  void record_phase(const std::string& name, double seconds) override;
  Result<std::unique_ptr<Provider>> make_provider(const std::string& interface, const std::string& provider_id,
                                                  const Json& config) override;

  const std::map<std::string, ArtifactPtr>& outputs() const { return outputs_; }
  ArtifactPtr output(const std::string& port) const;
  template <class T>
  std::shared_ptr<const T> output_as(const std::string& port) const {
    return std::dynamic_pointer_cast<const T>(output(port));
  }
  // Phases in the order first recorded, with their summed seconds.
  const std::vector<std::pair<std::string, double>>& phases() const { return phases_; }
  // How many progress() calls each label got.
  const std::map<std::string, int>& progress_calls() const { return progress_calls_; }
  int progress_count(const std::string& label) const;
  int progress_count() const;  // all labels

 private:
  Config config_;
  std::string stage_id_;
  int iteration_ = 0;
  bool cancelled_ = false;
  bool owns_work_dir_ = false;
  std::filesystem::path work_dir_;
  std::map<std::string, ArtifactPtr> inputs_;
  std::map<std::string, ArtifactPtr> outputs_;
  std::vector<ProviderFactory> providers_;
  ProviderLookup lookup_;
  std::vector<std::pair<std::string, double>> phases_;
  std::map<std::string, int> progress_calls_;
};

// The agent's config as the kernel would give it: `values` checked and defaulted by the factory's
// schema. Throws StatusError with the schema's message when they do not fit.
PROFAGENT_SDK_API Config resolve_config(const AgentFactory& factory, const Json& values);

// Runs an agent of `factory` in `context` as the kernel does: made by the factory from
// context.config(), then run through Agent::execute (which turns an exception into a failed status).
// Returns the factory's refusal or the run's status.
PROFAGENT_SDK_API Status run_agent(const AgentFactory& factory, FakeAgentContext& context);

}  // namespace testing
PROFAGENT_ABI_NAMESPACE_END

// check_llm_backends_ready (see llm_readiness.hpp).
#include "llm_readiness.hpp"

#include <set>

#include "profagent/llm.hpp"
#include "provider_resolution.hpp"

namespace profagent::kernel {

namespace {

class ReadinessCheck {
 public:
  ReadinessCheck(const Workflow& workflow, const Registry& registry) : workflow_(workflow), registry_(registry) {}

  Status stages(const std::vector<StageSpec>& list) {
    for (const auto& stage : list) {
      if (stage.is_loop()) {
        PROFAGENT_RETURN_IF_ERROR(stages(stage.loop->stages));
        if (stage.loop->decide)
          PROFAGENT_RETURN_IF_ERROR(agent(stage.loop->decide->agent, stage.loop->decide->with, stage.id + " (decide)"));
        continue;
      }
      PROFAGENT_RETURN_IF_ERROR(agent(stage.agent, stage.with, stage.id));
    }
    return Status::ok();
  }

 private:
  Status agent(const std::string& agent_id, const ConfigBlock& with, const std::string& stage) {
    const AgentFactory* factory = registry_.find_agent(agent_id);
    if (!factory || !with.value.is_object()) return Status::ok();  // the validator reported it
    for (const auto& field : factory->config.fields()) {
      if (field.provider_interface != kLlmInterface) continue;
      std::string id;
      Json config = Json::object();
      if (field.type == ConfigType::kString) {
        const Json value = with.value.contains(field.name) ? with.value.at(field.name)
                                                          : field.default_value.value_or(Json());
        if (!value.is_string()) continue;
        id = value.get<std::string>();
        for (const auto& other : factory->config.fields())
          if (other.type == ConfigType::kMap && other.provider_key == field.name && with.value.contains(other.name) &&
              with.value.at(other.name).is_object())
            config = with.value.at(other.name);
      } else if (field.type == ConfigType::kMap && with.value.contains(field.name)) {
        config = with.value.at(field.name);
        const std::string key = provider_id_key(kLlmInterface);
        if (!config.is_object() || !config.contains(key) || !config.at(key).is_string()) continue;
        id = config.at(key).get<std::string>();
        config.erase(key);
      }
      if (id.empty() || !checked_.insert(id + "\n" + config.dump()).second) continue;
      const std::string where = "stage '" + stage + "': with." + field.name + " (llm '" + id + "')";
      auto made = make_workflow_provider(workflow_, registry_, kLlmInterface, id, config);
      if (!made) return std::move(made).take_status().with_context(where);
      const auto* backend = dynamic_cast<const LlmBackend*>(made.value().get());
      if (!backend) continue;
      Status ready = backend->check_ready();
      if (!ready) return Status(ready.code(), where + ": " + ready.message());
    }
    return Status::ok();
  }

  const Workflow& workflow_;
  const Registry& registry_;
  std::set<std::string> checked_;
};

}  // namespace

Status check_llm_backends_ready(const Workflow& workflow, const Registry& registry) {
  return ReadinessCheck(workflow, registry).stages(workflow.stages);
}

}  // namespace profagent::kernel

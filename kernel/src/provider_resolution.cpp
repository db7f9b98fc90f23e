// make_workflow_provider (see provider_resolution.hpp).
#include "provider_resolution.hpp"

#include "profagent/agent.hpp"

namespace profagent::kernel {

Result<std::unique_ptr<Provider>> make_workflow_provider(const Workflow& workflow, const Registry& registry,
                                                         const std::string& interface,
                                                         const std::string& provider_id, const Json& config) {
  std::string id = provider_id;
  Json merged = config.is_null() ? Json::object() : config;
  // Named resources of the workflow (`resources:`, and `llm:` entries): the agent names the resource,
  // the workflow says which provider and configuration it is; the agent's own keys win.
  const ResourceSpec* resource = workflow.find_resource(provider_id);
  if (resource && resource->interface == interface) {
    id = resource->provider_id;
    Json base = resource->provider_config().value;
    for (const auto& [key, value] : merged.items()) base[key] = value;
    merged = std::move(base);
  }
  const ProviderFactory* factory = registry.find_provider(interface, id);
  if (!factory) {
    std::string known;
    for (const auto* p : registry.providers_of(interface)) known += (known.empty() ? "" : ", ") + p->id;
    return Status(ErrorCode::kNotFound, "no provider '" + id + "' of interface '" + interface + "' (known: " +
                                            (known.empty() ? "none" : known) + ")");
  }
  auto resolved = factory->config.resolve(merged);
  if (!resolved) return std::move(resolved).take_status().with_context("configuring provider '" + id + "'");
  // The SDK's wrapper turns an exception of the provider's factory into a Status.
  return profagent::make_provider(*factory, resolved.value());
}

}  // namespace profagent::kernel

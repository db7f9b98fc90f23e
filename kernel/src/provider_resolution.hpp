#pragma once
// How a provider id named in a stage's config becomes a provider: a resource of that interface by
// name (its provider, its config under the agent's keys), else a loaded provider with the agent's
// config. StageContext::make_provider and the pre-run LLM readiness check share it.
#include <memory>
#include <string>

#include "profagent/kernel/registry.hpp"
#include "profagent/kernel/workflow.hpp"
#include "profagent/provider.hpp"

namespace profagent::kernel {

Result<std::unique_ptr<Provider>> make_workflow_provider(const Workflow& workflow, const Registry& registry,
                                                         const std::string& interface,
                                                         const std::string& provider_id, const Json& config);

}  // namespace profagent::kernel

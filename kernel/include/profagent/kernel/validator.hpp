#pragma once
// Checks a parsed workflow against the loaded plugins before anything runs: unknown agents, resources
// (and llm backends) naming no loaded provider or not matching its config schema, `with:` keys
// against each factory's config schema (unknown, mistyped, out of range, missing required; a
// resource where the key takes no map), dangling stage.port references, artifact kind mismatches,
// cycles outside loops, duplicate stage ids, and `until:` syntax and references.
#include <vector>

#include "profagent/kernel/registry.hpp"
#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

std::vector<Diagnostic> validate_workflow(const Workflow& workflow, const Registry& registry);

// A resource's config as the provider resolves it (defaults filled in), with its id key and its
// secrets redacted ("***"): what --plan and resolved.json show.
Json redacted_resource(const ResourceSpec& resource, const Registry& registry);

// A `with:` block resolved by the agent's schema and redacted, each "${resources.NAME}" in it
// shown as redacted_resource(); the raw block when it does not resolve.
Json redacted_with(const ConfigBlock& with, const AgentFactory* factory, const Workflow& workflow,
                   const Registry& registry);

// The stage order the executor will use in each scope (top level, then each loop body), computed
// from the references. Only valid on a workflow that validated cleanly.
std::vector<const StageSpec*> topological_order(const std::vector<StageSpec>& scope);

}  // namespace profagent::kernel

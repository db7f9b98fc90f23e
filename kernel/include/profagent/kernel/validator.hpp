#pragma once
// Checks a parsed workflow against the loaded plugins before anything runs: unknown agents and llm
// backends, `with:` keys against each factory's config schema (unknown, mistyped, out of range,
// missing required), dangling stage.port references, artifact kind mismatches, cycles outside
// loops, duplicate stage ids, and `until:` syntax and references.
#include <vector>

#include "profagent/kernel/registry.hpp"
#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

std::vector<Diagnostic> validate_workflow(const Workflow& workflow, const Registry& registry);

// The stage order the executor will use in each scope (top level, then each loop body), computed
// from the references. Only valid on a workflow that validated cleanly.
std::vector<const StageSpec*> topological_order(const std::vector<StageSpec>& scope);

}  // namespace profagent::kernel

#pragma once
// Before a run's first stage: every LLM backend a stage will use (a config field of interface "llm",
// given or by default, in loop bodies and decide agents too) is made and asked check_ready(), so a
// missing API key stops the run before anything ran, with the variable's name (exit 2).
#include "profagent/kernel/registry.hpp"
#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

Status check_llm_backends_ready(const Workflow& workflow, const Registry& registry);

}  // namespace profagent::kernel

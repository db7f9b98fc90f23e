#pragma once
// `profagent-run --plan`: the resolved stage graph in execution order, nothing run.
#include <string>

#include "profagent/kernel/registry.hpp"
#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

std::string format_plan(const Workflow& workflow, const Registry& registry);

}  // namespace profagent::kernel

#pragma once
// Phase timing for library code that may run with or without a stage: engines and helpers that an
// agent calls take an optional AgentContext* and time their phases only when they have one.
#include <optional>
#include <string>
#include <utility>

#include "profagent/agent.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

// A timer for phase `name` on `context` until it ends or is reset; empty when `context` is null.
inline std::optional<PhaseTimer> phase_if(AgentContext* context, std::string name) {
  std::optional<PhaseTimer> timer;
  if (context) timer.emplace(context->phase(std::move(name)));
  return timer;
}

PROFAGENT_ABI_NAMESPACE_END

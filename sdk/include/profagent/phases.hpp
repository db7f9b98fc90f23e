#pragma once
// Phase timing helpers: for library code that may run with or without a stage (engines and helpers
// that an agent calls take an optional AgentContext* and time their phases only when they have one),
// and for contexts that keep the phases.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "profagent/agent.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

// A timer for phase `name` on `context` until it ends or is reset; empty when `context` is null.
inline std::optional<PhaseTimer> phase_if(AgentContext* context, std::string name) {
  std::optional<PhaseTimer> timer;
  if (context) timer.emplace(context->phase(std::move(name)));
  return timer;
}

// How a context keeps the phases it is told of: in the order first recorded, a phase recorded again
// adding to its seconds (the kernel's stage context and the SDK's fake context alike).
inline void add_phase(std::vector<std::pair<std::string, double>>& phases, const std::string& name,
                      double seconds) {
  for (auto& [known, total] : phases) {
    if (known == name) {
      total += seconds;
      return;
    }
  }
  phases.emplace_back(name, seconds);
}

PROFAGENT_ABI_NAMESPACE_END

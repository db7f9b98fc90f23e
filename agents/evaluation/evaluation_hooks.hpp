#pragma once
// What the evaluation reports while it runs, each part optional: a cancellation check, progress, the
// log, and the stage's context that its phases (prepare, dataset pass, agreement, warm-up, timed
// forwards, ...) are recorded on.
#include <functional>
#include <optional>
#include <string>

#include "profagent/agent.hpp"
#include "profagent/phases.hpp"

namespace spdlog {
class logger;
}

namespace profagent::agents {

struct EvaluationHooks {
  std::function<bool()> cancelled;           // checked before every batch and timed repeat
  std::function<void(long, long)> progress;  // (batches done, batches in all)
  spdlog::logger* log = nullptr;             // null: profagent::log()
  AgentContext* phases = nullptr;            // records the phases; null: they are not recorded
};

// Times phase `name` on hooks.phases until the returned timer ends or is reset; nothing without one.
inline std::optional<PhaseTimer> phase(const EvaluationHooks& hooks, std::string name) {
  return phase_if(hooks.phases, std::move(name));
}

}  // namespace profagent::agents

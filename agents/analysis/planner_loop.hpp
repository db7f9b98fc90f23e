#pragma once
// The conversation with a backend: ask, check the reply (reply_validation.hpp), re-ask quoting the
// errors at most `max_reasks` times within `token_budget`, and fall back to the embedded planner
// (plugins/llm/heuristic) with a warning when no reply is usable or the backend fails. Everything
// that happened lands in the plan's `planner` section. No LibTorch.
#include <functional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/llm.hpp"
#include "profagent/status.hpp"
#include "reply_validation.hpp"

namespace spdlog {
class logger;
}

namespace profagent::agents {

struct PlannerSettings {
  int max_reasks = 2;
  std::int64_t token_budget = 0;   // tokens in + out over all calls; 0: no limit
  std::int64_t max_tokens = 4096;  // per call
  std::function<bool()> cancelled;
};

struct PlannedOutcome {
  Json plan;     // the canonical plan with `summary` and `planner`
  Json planner;  // {backend, model, calls [{tokens_in, tokens_out, ms, retries, finish_reason}], warnings,
                 //  fallback, reasks, clamped}
  std::vector<std::string> warnings;
};

// `backend` null: it could not be made (`unavailable` says why) and the embedded planner answers.
// Errors: cancellation, or evidence the embedded planner cannot read.
Result<PlannedOutcome> run_planner(LlmBackend* backend, const std::string& backend_name,
                                   const std::string& unavailable, std::vector<LlmMessage> messages,
                                   const Json& schema, const Json& evidence, const ReplyRules& rules,
                                   const PlannerSettings& settings, spdlog::logger& log);

}  // namespace profagent::agents

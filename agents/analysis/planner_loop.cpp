// Ask, check, re-ask, fall back (planner_loop.hpp).
#include "planner_loop.hpp"

#include <spdlog/logger.h>

#include "heuristic_planner.hpp"

namespace profagent::agents {

namespace {

constexpr std::size_t kMaxEchoedReply = 8000;  // a refused reply sent back in the re-ask, at most

std::string first_errors(const std::vector<std::string>& errors) {
  std::string text = errors.empty() ? std::string("no reason") : errors.front();
  if (errors.size() > 1) text += " (and " + std::to_string(errors.size() - 1) + " more)";
  return text;
}

}  // namespace

Result<PlannedOutcome> run_planner(LlmBackend* backend, const std::string& backend_name,
                                   const std::string& unavailable, std::vector<LlmMessage> messages,
                                   const Json& schema, const Json& evidence, const ReplyRules& rules,
                                   const PlannerSettings& settings, spdlog::logger& log) {
  PlannedOutcome out;
  Json calls = Json::array();
  std::string model = backend ? backend->model_name() : std::string();
  std::string fallback_reason = unavailable;
  std::int64_t tokens = 0;
  int reasks = 0;
  auto warn = [&](const std::string& message) {
    log.warn("analysis: {}", message);
    out.warnings.push_back(message);
  };
  Json plan;
  for (int attempt = 0; backend != nullptr && attempt <= settings.max_reasks; ++attempt) {
    if (settings.cancelled && settings.cancelled())
      return cancelled_status("analysis", "before calling the backend");
    if (settings.token_budget > 0 && tokens >= settings.token_budget) {
      fallback_reason = "the token budget (" + std::to_string(settings.token_budget) + ") is spent after " +
                        std::to_string(calls.size()) + " calls (" + std::to_string(tokens) + " tokens)";
      break;
    }
    LlmRequest request;
    request.messages = messages;
    request.response_schema = schema;
    request.evidence = evidence;
    request.max_tokens = settings.max_tokens;
    request.cancelled = settings.cancelled;
    auto reply = backend->complete(request);
    if (!reply) {
      if (reply.status().code() == ErrorCode::kCancelled) return std::move(reply).take_status();
      calls.push_back(Json{{"error", reply.status().message()}});
      fallback_reason = "the backend failed: " + reply.status().message();
      break;
    }
    if (!reply->model.empty()) model = reply->model;
    tokens += reply->input_tokens + reply->output_tokens;
    calls.push_back(Json{{"tokens_in", reply->input_tokens},
                         {"tokens_out", reply->output_tokens},
                         {"ms", reply->milliseconds},
                         {"retries", reply->retries},
                         {"finish_reason", reply->finish_reason}});
    CheckedReply checked;
    if (!reply->refusal.empty() || reply->finish_reason == "refusal") {
      checked.errors.push_back("the model refused: " + Json(reply->refusal.substr(0, 300)).dump());
    } else if (reply->finish_reason == "length") {
      checked.errors.push_back(
          "the reply was cut off at the token limit (finish_reason 'length'); answer shorter");
    } else {
      checked = check_reply_text(reply->text, rules);
    }
    if (checked.ok()) {
      for (const auto& note : checked.notes) warn(note);
      out.planner["clamped"] = checked.notes;
      plan = std::move(checked.plan);
      break;
    }
    warn("reply " + std::to_string(calls.size()) + " refused: " + first_errors(checked.errors));
    fallback_reason = "no usable reply in " + std::to_string(calls.size()) +
                      " calls; the last: " + first_errors(checked.errors);
    if (attempt == settings.max_reasks) break;
    ++reasks;
    messages.push_back(LlmMessage{"assistant", reply->text.substr(0, kMaxEchoedReply)});
    messages.push_back(LlmMessage{"user", reask_message(checked.errors)});
  }
  const bool fallback = plan.is_null();
  if (fallback) {
    warn("fallback to the embedded planner: " + fallback_reason);
    PROFAGENT_ASSIGN_OR_RETURN(Json reply, heuristic::plan_from_evidence(evidence));
    CheckedReply checked = check_reply(reply, rules);
    if (!checked.ok())
      return Status(ErrorCode::kInternal,
                    "the embedded planner's reply failed its own checks: " + first_errors(checked.errors));
    for (const auto& note : checked.notes) warn(note);
    out.planner["clamped"] = checked.notes;
    plan = std::move(checked.plan);
  }
  out.planner["backend"] = backend_name;
  out.planner["model"] = fallback && model.empty() ? std::string("profagent-heuristic-1") : model;
  out.planner["calls"] = std::move(calls);
  out.planner["reasks"] = reasks;
  out.planner["fallback"] = fallback;
  out.planner["warnings"] = out.warnings;
  plan["planner"] = out.planner;
  out.plan = std::move(plan);
  return out;
}

}  // namespace profagent::agents

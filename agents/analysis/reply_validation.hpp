#pragma once
// Every backend reply is checked before it becomes a plan: the JSON object is extracted from the text
// (code fences and prose around it tolerated), checked against the reply schema, every layer must be a
// real prunable group (or quantizable layer) of this model, ratios lie in [0, max_ratio] (above the
// cap: clamped and recorded, never trusted), no layer twice per action, only the task's actions. The
// accepted reply becomes the canonical plan the pruning agent reads (agents/pruning/plan.hpp).
// No LibTorch: unit-tested on reply strings.
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::agents {

// The JSON object in `text`: the whole text, else the first fenced block that parses, else the first
// balanced {...} that parses. Errors (kValidation) say what was found.
Result<Json> extract_json_object(const std::string& text);

struct ReplyRules {
  std::string task = "prune";               // prune | quantize | both
  double max_ratio = 0.5;                   // the safety cap
  std::vector<std::string> groups;          // prunable group names (what a prune entry may name)
  std::vector<std::string> ignored_groups;  // prunable groups the stage's config excludes
  std::vector<std::string> quantizable;     // layer names a quantize entry may name
  std::vector<std::string> ignored_layers;  // the stage's ignored_layers (copied into the plan)
};

struct CheckedReply {
  std::vector<std::string> errors;  // the reply is refused when not empty (quoted in the re-ask)
  std::vector<std::string> notes;   // accepted with changes: clamped ratios
  Json plan;                        // the canonical plan (pruning / quantization sections, summary)
  bool ok() const { return errors.empty(); }
};

// Checks an extracted reply against the schema and the rules and converts it.
CheckedReply check_reply(const Json& reply, const ReplyRules& rules);

// extract_json_object + check_reply; an extraction failure is the one error.
CheckedReply check_reply_text(const std::string& text, const ReplyRules& rules);

// The user message of a re-ask: the errors (layer names as JSON strings) and what to send instead.
std::string reask_message(const std::vector<std::string>& errors);

}  // namespace profagent::agents

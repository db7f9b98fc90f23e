// Extraction, checking and conversion of a backend's reply (reply_validation.hpp).
#include "reply_validation.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "profagent/text.hpp"
#include "reply_schema.hpp"

namespace profagent::agents {

namespace {

constexpr std::size_t kMaxReasonChars = 400;  // a reply's prose is kept, but not without bound
constexpr std::size_t kMaxQuotedErrors = 20;  // a re-ask quotes this many errors at most

std::optional<Json> reply_object(const std::string& text) {
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

// The end (one past the closing brace) of the object starting at `open`, skipping braces in strings.
std::size_t balanced_end(const std::string& text, std::size_t open) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{')
      ++depth;
    else if (c == '}' && --depth == 0)
      return i + 1;
  }
  return std::string::npos;
}

std::string json_quoted(const std::string& name) {
  return Json(name).dump();
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  auto close = close_matches(name, candidates);
  if (close.empty()) return "";
  std::vector<std::string> names;
  for (const auto& c : close) names.push_back(json_quoted(c));
  return "; did you mean " + join(names, " or ") + "?";
}

bool listed_in(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string cap_reason(std::string reason) {
  if (reason.size() > kMaxReasonChars) reason = reason.substr(0, kMaxReasonChars) + "...";
  return reason;
}

}  // namespace

Result<Json> extract_json_object(const std::string& text) {
  const std::string trimmed = trim(text);
  if (trimmed.empty()) return Status(ErrorCode::kValidation, "the reply is empty");
  if (auto whole = reply_object(trimmed)) return *whole;
  // Fenced blocks: ```json ... ``` or ``` ... ```.
  for (std::size_t at = trimmed.find("```"); at != std::string::npos;) {
    const std::size_t body = trimmed.find('\n', at + 3);
    if (body == std::string::npos) break;
    const std::size_t end = trimmed.find("```", body);
    if (end == std::string::npos) break;
    if (auto block = reply_object(trimmed.substr(body + 1, end - body - 1))) return *block;
    at = trimmed.find("```", end + 3);
  }
  bool unbalanced = false;
  for (std::size_t open = trimmed.find('{'); open != std::string::npos; open = trimmed.find('{', open + 1)) {
    const std::size_t end = balanced_end(trimmed, open);
    if (end == std::string::npos) {
      unbalanced = true;
      continue;
    }
    if (auto object = reply_object(trimmed.substr(open, end - open))) return *object;
  }
  std::string start = trimmed.substr(0, 80);
  return Status(ErrorCode::kValidation,
                std::string(unbalanced ? "the reply's JSON is cut off or malformed (unbalanced braces)"
                                       : "no JSON object in the reply") +
                    " (" + std::to_string(trimmed.size()) + " characters, starting " + json_quoted(start) +
                    ")");
}

CheckedReply check_reply(const Json& reply, const ReplyRules& rules) {
  CheckedReply out;
  auto error = [&out](std::string message) { out.errors.push_back(std::move(message)); };
  if (!reply.is_object()) {
    error("the reply is not a JSON object");
    return out;
  }
  for (auto it = reply.begin(); it != reply.end(); ++it)
    if (it.key() != "layers" && it.key() != "summary")
      error("unknown key " + json_quoted(it.key()) + " (known: layers, summary)");
  if (!reply.contains("summary") || !reply["summary"].is_string()) error("'summary' must be a string");
  if (!reply.contains("layers") || !reply["layers"].is_array()) {
    error("'layers' must be an array of {layer, action, ratio, scheme, reason}");
    return out;
  }
  const std::vector<std::string> actions = actions_for_task(rules.task);
  const auto& schemes = quantization_schemes();
  static const std::vector<std::string> kFields = {"layer", "action", "ratio", "scheme", "reason"};
  Json pruning_layers = Json::object();
  Json quantization_layers = Json::object();
  std::set<std::pair<std::string, std::string>> seen;
  std::size_t index = 0;
  for (const Json& entry : reply["layers"]) {
    const std::string at = "layers[" + std::to_string(index++) + "]";
    if (!entry.is_object()) {
      error(at + " is not an object");
      continue;
    }
    bool shape_ok = true;
    for (auto it = entry.begin(); it != entry.end(); ++it)
      if (!listed_in(kFields, it.key())) {
        error(at + ": unknown field " + json_quoted(it.key()));
        shape_ok = false;
      }
    for (const auto& field : kFields)
      if (!entry.contains(field)) {
        error(at + ": missing field '" + field + "' (every field is required; null where it does not apply)");
        shape_ok = false;
      }
    if (!shape_ok) continue;
    if (!entry["layer"].is_string() || !entry["action"].is_string() || !entry["reason"].is_string()) {
      error(at + ": 'layer', 'action' and 'reason' must be strings");
      continue;
    }
    const std::string layer = entry["layer"].get<std::string>();
    const std::string action = entry["action"].get<std::string>();
    const std::string where = at + " (" + json_quoted(layer) + ")";
    if (!listed_in(actions, action)) {
      error(where + ": action " + json_quoted(action) + " is not allowed for task '" + rules.task +
            "' (allowed: " + join(actions) + ")");
      continue;
    }
    if (!seen.insert({layer, action}).second) {
      error(where + ": " + json_quoted(layer) + " appears twice with action '" + action + "'");
      continue;
    }
    const std::string reason = cap_reason(entry["reason"].get<std::string>());
    if (action == "prune") {
      if (!listed_in(rules.groups, layer)) {
        if (listed_in(rules.ignored_groups, layer)) {
          error(where + ": the stage's config excludes this group (ignored_layers / ignore_input_layer)");
        } else {
          error(where + ": no prunable group is named " + json_quoted(layer) +
                did_you_mean(layer, rules.groups));
        }
        continue;
      }
      if (!entry["scheme"].is_null()) error(where + ": a prune entry's 'scheme' must be null");
      if (!entry["ratio"].is_number()) {
        error(where + ": a prune entry needs a number 'ratio', got " + entry["ratio"].dump());
        continue;
      }
      double ratio = entry["ratio"].get<double>();
      if (!std::isfinite(ratio) || ratio < 0.0) {
        error(where + ": ratio " + entry["ratio"].dump() + " is not in [0, " +
              std::to_string(rules.max_ratio) + "]");
        continue;
      }
      if (ratio > rules.max_ratio) {
        out.notes.push_back(where + ": ratio " + entry["ratio"].dump() + " clamped to the cap max_ratio " +
                            Json(rules.max_ratio).dump());
        ratio = rules.max_ratio;
      }
      pruning_layers[layer] = Json{{"ratio", ratio}, {"reason", reason}};
    } else {
      if (!listed_in(rules.quantizable, layer)) {
        error(where + ": no quantizable layer is named " + json_quoted(layer) +
              did_you_mean(layer, rules.quantizable));
        continue;
      }
      if (!entry["ratio"].is_null()) error(where + ": a quantize entry's 'ratio' must be null");
      if (!entry["scheme"].is_string() || !listed_in(schemes, entry["scheme"].get<std::string>())) {
        error(where + ": scheme " + entry["scheme"].dump() + " is not one of " + join(schemes));
        continue;
      }
      quantization_layers[layer] = Json{{"scheme", entry["scheme"]}, {"reason", reason}};
    }
  }
  if (!out.ok()) return out;
  Json plan = Json::object();
  if (listed_in(actions, "prune")) {
    // Groups the reply does not name are not pruned: a plan says what to remove, never "the rest too".
    plan["pruning"] =
        Json{{"global_ratio", 0.0}, {"layers", pruning_layers}, {"ignored_layers", rules.ignored_layers}};
  }
  if (listed_in(actions, "quantize")) {
    plan["quantization"] =
        Json{{"default", "none"}, {"layers", quantization_layers}, {"ignored_layers", rules.ignored_layers}};
  }
  plan["summary"] = cap_reason(reply["summary"].get<std::string>());
  out.plan = std::move(plan);
  return out;
}

CheckedReply check_reply_text(const std::string& text, const ReplyRules& rules) {
  auto extracted = extract_json_object(text);
  if (!extracted) {
    CheckedReply out;
    out.errors.push_back(extracted.status().message());
    return out;
  }
  return check_reply(extracted.value(), rules);
}

std::string reask_message(const std::vector<std::string>& errors) {
  std::string text = "Your previous reply could not be used:\n";
  for (std::size_t i = 0; i < errors.size() && i < kMaxQuotedErrors; ++i) text += "- " + errors[i] + "\n";
  if (errors.size() > kMaxQuotedErrors)
    text += "- ... and " + std::to_string(errors.size() - kMaxQuotedErrors) + " more\n";
  text +=
      "Reply again with only the corrected JSON object that follows the schema. Name layers exactly as the "
      "evidence gives them.";
  return text;
}

}  // namespace profagent::agents

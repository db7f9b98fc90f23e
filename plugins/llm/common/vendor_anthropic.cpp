// Anthropic Messages API (POST {base_url}/v1/messages, x-api-key, anthropic-version, max_tokens
// required). JSON is forced through a tool: the reply's schema is the input_schema of one tool, and
// tool_choice {type: tool, name} makes the model call it; the tool_use block's input, serialized, is
// the reply text. System messages go to the top-level `system`. stop_reason max_tokens is "length".
#include "http_backend.hpp"
#include "vendor_common.hpp"

namespace profagent::llm {

namespace {

http::HttpRequest build(const LlmRequest& request, const HttpBackendOptions& options, const std::string& key) {
  Json messages = Json::array();
  std::string system;
  for (const auto& message : request.messages) {
    if (message.role == "system")
      system += (system.empty() ? "" : "\n\n") + message.content;
    else
      messages.push_back({{"role", message.role}, {"content", message.content}});
  }
  Json body = {{"model", options.model},
               {"max_tokens", request.max_tokens},
               {"temperature", request.temperature},
               {"messages", messages}};
  if (!system.empty()) body["system"] = system;
  if (!request.response_schema.is_null()) {
    body["tools"] = Json::array({{{"name", request.schema_name},
                                  {"description", "Return the answer through this tool, as its input."},
                                  {"input_schema", request.response_schema}}});
    body["tool_choice"] = {{"type", "tool"}, {"name", request.schema_name}};
  }
  http::HttpRequest out;
  out.url = join_url(options.base_url, "/v1/messages");
  out.headers = {{"Content-Type", "application/json"}, {"anthropic-version", options.anthropic_version}};
  if (!key.empty()) out.headers.emplace_back("x-api-key", key);
  out.body = body.dump();
  return out;
}

Result<LlmReply> parse(const http::HttpResponse& response) {
  PROFAGENT_ASSIGN_OR_RETURN(Json body, parse_body(response));
  const Json* content = find_path(body, {"content"});
  if (!content || !content->is_array())
    return Status(ErrorCode::kParseError, "the reply has no content array: " + excerpt(response.body));
  LlmReply reply;
  std::string text;
  bool tool = false;
  for (const auto& block : *content) {
    const std::string type = string_at(block, {"type"});
    if (type == "tool_use" && !tool) {
      const Json* input = find_path(block, {"input"});
      reply.text = input ? input->dump() : "";
      tool = true;
    } else if (type == "text") {
      text += string_at(block, {"text"});
    }
  }
  if (!tool) reply.text = text;
  reply.model = string_at(body, {"model"});
  reply.raw_finish_reason = string_at(body, {"stop_reason"});
  reply.input_tokens = int_at(body, {"usage", "input_tokens"});
  reply.output_tokens = int_at(body, {"usage", "output_tokens"});
  if (reply.raw_finish_reason == "max_tokens")
    reply.finish_reason = "length";
  else if (reply.raw_finish_reason == "refusal") {
    reply.finish_reason = "refusal";
    reply.refusal = text.empty() ? "refused (stop_reason: refusal)" : text;
  } else
    reply.finish_reason = "stop";
  return reply;
}

// {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
std::string error_message(const http::HttpResponse& response) {
  Json body = Json::parse(response.body, nullptr, false);
  if (body.is_discarded()) return excerpt(response.body);
  const std::string message = string_at(body, {"error", "message"});
  const std::string type = string_at(body, {"error", "type"});
  if (message.empty()) return excerpt(response.body);
  return type.empty() ? message : message + " [" + type + "]";
}

}  // namespace

const Vendor& anthropic_vendor() {
  static const Vendor vendor{"anthropic", "https://api.anthropic.com", "claude-sonnet-4-5", "ANTHROPIC_API_KEY",
                             build, parse, error_message, {}};
  return vendor;
}

}  // namespace profagent::llm

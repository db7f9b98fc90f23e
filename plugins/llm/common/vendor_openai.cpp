// OpenAI Chat Completions (POST {base_url}/chat/completions): the reply's JSON Schema goes in
// response_format {type: json_schema, json_schema: {name, strict: true, schema}}; a refusal comes
// back in choices[0].message.refusal, a truncated reply as finish_reason "length". Any server that
// speaks this API (vLLM, llama.cpp server, LM Studio, Ollama's /v1) works through base_url.
#include "http_backend.hpp"
#include "vendor_common.hpp"

namespace profagent::llm {

namespace {

http::HttpRequest build(const LlmRequest& request, const HttpBackendOptions& options, const std::string& key) {
  Json messages = Json::array();
  for (const auto& message : request.messages) messages.push_back({{"role", message.role}, {"content", message.content}});
  Json body = {{"model", options.model},
               {"messages", messages},
               {"max_tokens", request.max_tokens},
               {"temperature", request.temperature}};
  if (!request.response_schema.is_null())
    body["response_format"] = {{"type", "json_schema"},
                               {"json_schema",
                                {{"name", request.schema_name}, {"strict", true}, {"schema", request.response_schema}}}};
  http::HttpRequest out;
  out.url = join_url(options.base_url, "/chat/completions");
  out.headers = {{"Content-Type", "application/json"}};
  if (!key.empty()) out.headers.emplace_back("Authorization", "Bearer " + key);
  out.body = body.dump();
  return out;
}

Result<LlmReply> parse(const http::HttpResponse& response) {
  PROFAGENT_ASSIGN_OR_RETURN(Json body, parse_body(response));
  const Json* choices = find_path(body, {"choices"});
  if (!choices || !choices->is_array() || choices->empty())
    return Status(ErrorCode::kParseError, "the reply has no choices[0]: " + excerpt(response.body));
  const Json& choice = (*choices)[0];
  LlmReply reply;
  reply.model = string_at(body, {"model"});
  reply.raw_finish_reason = string_at(choice, {"finish_reason"});
  reply.text = string_at(choice, {"message", "content"});
  reply.refusal = string_at(choice, {"message", "refusal"});
  reply.input_tokens = int_at(body, {"usage", "prompt_tokens"});
  reply.output_tokens = int_at(body, {"usage", "completion_tokens"});
  if (!reply.refusal.empty() || reply.raw_finish_reason == "content_filter")
    reply.finish_reason = "refusal";
  else if (reply.raw_finish_reason == "length")
    reply.finish_reason = "length";
  else
    reply.finish_reason = "stop";
  return reply;
}

// {"error": {"message": ..., "type": ..., "code": ...}}
std::string error_message(const http::HttpResponse& response) {
  Json body = Json::parse(response.body, nullptr, false);
  if (body.is_discarded()) return excerpt(response.body);
  std::string message = string_at(body, {"error", "message"});
  const std::string code = string_at(body, {"error", "code"});
  if (!code.empty()) message += " [" + code + "]";
  return message.empty() ? excerpt(response.body) : message;
}

// A 429 for an exhausted quota is not a rate limit: waiting does not add credit.
bool final_response(const http::HttpResponse& response) {
  return response.status == 429 && response.body.find("insufficient_quota") != std::string::npos;
}

}  // namespace

const Vendor& openai_vendor() {
  static const Vendor vendor{"openai", "https://api.openai.com/v1", "gpt-4o", "OPENAI_API_KEY",
                             build, parse, error_message, final_response};
  return vendor;
}

}  // namespace profagent::llm

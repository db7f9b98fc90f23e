// Ollama's native chat API (POST {base_url}/api/chat): `format` is the reply's JSON Schema, `stream`
// false, options.num_ctx the context window (Ollama's default of 2048-4096 tokens silently cuts a
// long prompt). A server that streams anyway (NDJSON, one JSON object per line, the last with
// "done": true) is read by assembling the lines' message.content.
#include "http_backend.hpp"
#include "profagent/text.hpp"
#include "vendor_common.hpp"

namespace profagent::llm {

namespace {

http::HttpRequest build(const LlmRequest& request, const HttpBackendOptions& options, const std::string& key) {
  Json messages = Json::array();
  for (const auto& message : request.messages) messages.push_back({{"role", message.role}, {"content", message.content}});
  Json body = {{"model", options.model},
               {"messages", messages},
               {"stream", false},
               {"options", {{"num_ctx", options.num_ctx}, {"temperature", request.temperature},
                            {"num_predict", request.max_tokens}}}};
  if (!request.response_schema.is_null()) body["format"] = request.response_schema;
  http::HttpRequest out;
  out.url = join_url(options.base_url, "/api/chat");
  out.headers = {{"Content-Type", "application/json"}};
  if (!key.empty()) out.headers.emplace_back("Authorization", "Bearer " + key);  // a proxy in front of it
  out.body = body.dump();
  return out;
}

void read_final(const Json& line, LlmReply& reply) {
  reply.model = string_at(line, {"model"});
  reply.raw_finish_reason = string_at(line, {"done_reason"});
  reply.input_tokens = int_at(line, {"prompt_eval_count"});
  reply.output_tokens = int_at(line, {"eval_count"});
}

Result<LlmReply> parse(const http::HttpResponse& response) {
  LlmReply reply;
  Json whole = Json::parse(response.body, nullptr, false);
  if (!whole.is_discarded() && whole.is_object()) {
    reply.text = string_at(whole, {"message", "content"});
    read_final(whole, reply);
  } else {
    bool done = false;
    int count = 0;
    for (const auto& text : non_empty_lines(response.body)) {
      Json line = Json::parse(text, nullptr, false);
      if (line.is_discarded() || !line.is_object())
        return Status(ErrorCode::kParseError, "streamed line " + std::to_string(count + 1) +
                                                  " is not a JSON object: " + excerpt(text));
      ++count;
      if (auto error = string_at(line, {"error"}); !error.empty())
        return Status(ErrorCode::kRuntime, "the stream reported an error: " + error);
      reply.text += string_at(line, {"message", "content"});
      if (const Json* flag = find_path(line, {"done"}); flag && flag->is_boolean() && flag->get<bool>()) {
        read_final(line, reply);
        done = true;
      }
    }
    if (count == 0) return Status(ErrorCode::kParseError, "the reply is empty");
    if (!done)
      return Status(ErrorCode::kParseError, "the streamed reply ended after " + std::to_string(count) +
                                                " lines without a line with \"done\": true");
  }
  reply.finish_reason = reply.raw_finish_reason == "length" ? "length" : "stop";
  return reply;
}

// {"error": "model \"x\" not found, try pulling it first"}
std::string error_message(const http::HttpResponse& response) {
  Json body = Json::parse(response.body, nullptr, false);
  if (body.is_discarded()) return excerpt(response.body);
  const std::string message = string_at(body, {"error"});
  return message.empty() ? excerpt(response.body) : message;
}

}  // namespace

const Vendor& ollama_vendor() {
  static const Vendor vendor{"ollama", "http://localhost:11434", "llama3.1", "", build, parse, error_message, {}};
  return vendor;
}

}  // namespace profagent::llm

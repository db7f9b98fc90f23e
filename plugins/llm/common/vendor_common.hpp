#pragma once
// Small readers the vendor adapters share: the body as JSON, values at a path (absent or mistyped:
// empty), a short excerpt of a body for errors, base URL + path.
#include <cstdint>
#include <initializer_list>
#include <string>

#include "http.hpp"
#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::llm {

inline std::string excerpt(const std::string& body, std::size_t limit = 300) {
  return body.size() <= limit ? body : body.substr(0, limit) + "... (" + std::to_string(body.size()) + " bytes)";
}

inline Result<Json> parse_body(const http::HttpResponse& response) {
  Json body = Json::parse(response.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return Status(ErrorCode::kParseError, "the reply is not a JSON object: " + excerpt(response.body));
  return body;
}

inline const Json* find_path(const Json& root, std::initializer_list<const char*> path) {
  const Json* at = &root;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

inline std::string string_at(const Json& root, std::initializer_list<const char*> path) {
  const Json* at = find_path(root, path);
  return at && at->is_string() ? at->get<std::string>() : std::string();
}

inline std::int64_t int_at(const Json& root, std::initializer_list<const char*> path) {
  const Json* at = find_path(root, path);
  return at && at->is_number_integer() ? at->get<std::int64_t>() : 0;
}

inline std::string join_url(std::string base, const std::string& path) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + path;
}

}  // namespace profagent::llm

// Recording and replaying HTTP exchanges (see cassette.hpp).
#include "cassette.hpp"

#include <algorithm>
#include <cctype>

#include "http_backend.hpp"
#include "profagent/fs.hpp"
#include "profagent/log.hpp"

namespace profagent::llm {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

const char* kind_name(http::FailureKind kind) {
  switch (kind) {
    case http::FailureKind::kConnection: return "connection";
    case http::FailureKind::kTimeout: return "timeout";
    case http::FailureKind::kCancelled: return "cancelled";
    case http::FailureKind::kFatal: break;
  }
  return "fatal";
}

http::FailureKind kind_from(const std::string& name) {
  if (name == "connection") return http::FailureKind::kConnection;
  if (name == "timeout") return http::FailureKind::kTimeout;
  if (name == "cancelled") return http::FailureKind::kCancelled;
  return http::FailureKind::kFatal;
}

}  // namespace

bool is_credential_header(const std::string& name) {
  const std::string key = lower(name);
  for (const char* word : {"authorization", "key", "token", "secret", "cookie", "auth", "password"})
    if (key.find(word) != std::string::npos) return true;
  return false;
}

RecordingTransport::RecordingTransport(std::unique_ptr<http::Transport> inner, std::filesystem::path path,
                                       std::string vendor)
    : inner_(std::move(inner)), path_(std::move(path)) {
  cassette_ = {{"format", kCassetteFormat}, {"version", 1}, {"vendor", vendor}, {"exchanges", Json::array()}};
}

http::Attempt RecordingTransport::exchange(const http::HttpRequest& request, const http::AttemptControl& control) {
  http::Attempt attempt = inner_->exchange(request, control);
  // The credentials of this request: left out as headers, scrubbed wherever else they would appear.
  std::vector<std::string> secrets;
  Json headers = Json::object();
  for (const auto& [name, value] : request.headers) {
    if (!is_credential_header(name)) {
      headers[name] = value;
      continue;
    }
    secrets.push_back(value);
    if (lower(value).rfind("bearer ", 0) == 0) secrets.push_back(value.substr(7));
  }
  auto clean = [&secrets](std::string text) {
    for (const auto& secret : secrets) text = scrub(std::move(text), secret);
    return text;
  };
  Json entry = {{"request",
                 {{"method", request.method}, {"url", clean(request.url)}, {"headers", headers}, {"body", clean(request.body)}}}};
  if (attempt.ok()) {
    Json response_headers = Json::array();
    for (const auto& [name, value] : attempt.response.headers)
      if (!is_credential_header(name)) response_headers.push_back({name, clean(value)});
    entry["response"] = {{"status", attempt.response.status},
                         {"headers", response_headers},
                         {"body", clean(attempt.response.body)}};
  } else {
    entry["error"] = {{"kind", kind_name(attempt.kind)},
                      {"code", static_cast<int>(attempt.error.code())},
                      {"message", clean(attempt.error.message())}};
  }
  cassette_["exchanges"].push_back(std::move(entry));
  Status written = write_json_atomic(path_, cassette_);
  if (!written) log().warn("cassette {}: {}", path_.string(), written.message());
  return attempt;
}

Result<std::unique_ptr<ReplayingTransport>> ReplayingTransport::open(const std::filesystem::path& path,
                                                                     std::string match) {
  auto loaded = read_json(path);
  if (!loaded) return Status(loaded.status().code(), "cassette " + path.string() + ": " + loaded.status().message());
  const Json& cassette = loaded.value();
  if (!cassette.is_object() || cassette.value("format", "") != kCassetteFormat ||
      !cassette.contains("exchanges") || !cassette["exchanges"].is_array())
    return Status(ErrorCode::kParseError, "cassette " + path.string() + " is not a " + kCassetteFormat +
                                              " file (format, exchanges)");
  return std::unique_ptr<ReplayingTransport>(new ReplayingTransport(path, cassette["exchanges"], std::move(match)));
}

http::Attempt ReplayingTransport::exchange(const http::HttpRequest& request, const http::AttemptControl&) {
  const std::string where = "cassette " + path_.string();
  if (next_ >= exchanges_.size())
    return http::Attempt::failure(http::FailureKind::kFatal, ErrorCode::kNotFound,
                                  where + " holds " + std::to_string(exchanges_.size()) +
                                      " exchange(s); request " + std::to_string(next_ + 1) + " has no recording");
  const Json& entry = exchanges_[next_++];
  const Json& recorded = entry.value("request", Json::object());
  const std::string n = std::to_string(next_);
  if (recorded.value("method", "") != request.method || recorded.value("url", "") != request.url)
    return http::Attempt::failure(http::FailureKind::kFatal, ErrorCode::kValidation,
                                  where + ": request " + n + " is " + request.method + " " + request.url +
                                      ", the recording has " + recorded.value("method", "") + " " +
                                      recorded.value("url", ""));
  if (match_ == "exact" && recorded.value("body", "") != request.body)
    return http::Attempt::failure(http::FailureKind::kFatal, ErrorCode::kValidation,
                                  where + ": the body of request " + n + " differs from the recording (match: exact)");
  if (entry.contains("error")) {
    const Json& error = entry["error"];
    return http::Attempt::failure(kind_from(error.value("kind", "fatal")),
                                  static_cast<ErrorCode>(error.value("code", static_cast<int>(ErrorCode::kRuntime))),
                                  error.value("message", "recorded error"));
  }
  http::Attempt attempt;
  const Json& response = entry.value("response", Json::object());
  attempt.response.status = response.value("status", 0);
  for (const auto& header : response.value("headers", Json::array()))
    if (header.is_array() && header.size() == 2)
      attempt.response.headers.emplace_back(header[0].get<std::string>(), header[1].get<std::string>());
  attempt.response.body = response.value("body", "");
  return attempt;
}

}  // namespace profagent::llm

#pragma once
// Cassettes: every HTTP exchange of a run (each attempt, retries included: request, then the response
// or the transport error) in one JSON file, recorded by wrapping the real client and replayed offline
// in the same order. A cassette never holds credentials: headers whose name suggests one
// (authorization, x-api-key, *key*, *token*, *secret*, cookie) are left out, and their values are
// scrubbed from everything else that is written.
#include <filesystem>
#include <memory>
#include <string>

#include "http.hpp"
#include "profagent/json.hpp"

namespace profagent::llm {

inline constexpr const char* kCassetteFormat = "profagent.cassette";

bool is_credential_header(const std::string& name);

class RecordingTransport : public http::Transport {
 public:
  // Starts an empty cassette at `path` (written after every exchange, atomically).
  RecordingTransport(std::unique_ptr<http::Transport> inner, std::filesystem::path path, std::string vendor);
  http::Attempt exchange(const http::HttpRequest& request, const http::AttemptControl& control) override;

 private:
  std::unique_ptr<http::Transport> inner_;
  std::filesystem::path path_;
  Json cassette_;
};

// How a replayed request is matched to the recording: "sequence" (the n-th request gets the n-th
// response; method and URL must agree) or "exact" (the body too, byte for byte).
class ReplayingTransport : public http::Transport {
 public:
  static Result<std::unique_ptr<ReplayingTransport>> open(const std::filesystem::path& path, std::string match);
  http::Attempt exchange(const http::HttpRequest& request, const http::AttemptControl& control) override;

 private:
  ReplayingTransport(std::filesystem::path path, Json exchanges, std::string match)
      : path_(std::move(path)), exchanges_(std::move(exchanges)), match_(std::move(match)) {}
  std::filesystem::path path_;
  Json exchanges_;
  std::string match_;
  std::size_t next_ = 0;
};

}  // namespace profagent::llm

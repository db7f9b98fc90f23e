#pragma once
// The HTTP layer the LLM backends talk through (private to the backends: a static library they link
// PRIVATELY, never exported from libprofagent_sdk). One `Transport::exchange` is one attempt: a request
// out, a response (any status) or a transport error back. Retries, backoff and Retry-After live above
// it (retry.hpp), so a recording transport (the replay backend's cassette) sees every attempt.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  std::string port;    // always set: 80/443 when the URL has none
  std::string target;  // path and query, at least "/"
  std::string origin() const;  // scheme://host[:port], no path: what errors name
};
Result<Url> parse_url(const std::string& text);
bool is_loopback_host(const std::string& host);  // localhost, 127.0.0.0/8, ::1 (by name, before resolving)

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  Headers headers;  // besides Host, Content-Length, User-Agent, which the client sets
  std::string body;
};

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;
  std::string header(const std::string& name) const;  // case-insensitive; "" when absent
};

// What a transport error was, for the retry decision: a connection that could not be made or broke
// (retried), a timeout (retried while the total budget lasts), or something a retry cannot fix
// (TLS verification, the size cap, a URL not allowed, cancellation).
enum class FailureKind { kConnection, kTimeout, kFatal, kCancelled };

// One attempt's outcome: a response (any status), or an error of some kind.
struct Attempt {
  HttpResponse response;
  Status error;  // ok: `response` holds what the server sent
  FailureKind kind = FailureKind::kFatal;
  bool ok() const { return error.is_ok(); }
  static Attempt failure(FailureKind kind, ErrorCode code, std::string message) {
    Attempt attempt;
    attempt.error = Status(code, std::move(message));
    attempt.kind = kind;
    return attempt;
  }
};

struct ClientOptions {
  double connect_timeout_s = 10;   // resolve + TCP connect + TLS handshake
  double read_timeout_s = 120;     // request written and the whole response read
  double total_timeout_s = 300;    // every attempt and every wait between them
  std::int64_t max_response_bytes = 16 << 20;
  std::string ca_file;             // PEM bundle used instead of the system's CAs
  bool allow_insecure_http = false;  // plain http:// to a host that is not loopback
  std::string user_agent = "profagent";
};

// Deadlines of one attempt, and the user's "stop": polled while the call is in flight.
struct AttemptControl {
  double deadline_s = 0;  // seconds on steady_clock (seconds_now()) after which the attempt fails
  std::function<bool()> cancelled;
};
double seconds_now();  // steady_clock, seconds

class Transport {
 public:
  virtual ~Transport() = default;
  virtual Attempt exchange(const HttpRequest& request, const AttemptControl& control) = 0;
};

}  // namespace profagent::http

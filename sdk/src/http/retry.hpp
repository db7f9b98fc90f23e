#pragma once
// Retries above one attempt: connection errors, timeouts, 408, 409, 429 and 5xx (Anthropic's 529
// included) are tried again after a capped exponential backoff with jitter, or after the server's
// own Retry-After / retry-after-ms; other statuses (401, 400, 404, a quota error) are final. Every
// wait is bounded by what is left of total_timeout and polls the user's cancellation.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http.hpp"

namespace profagent::http {

struct RetryOptions {
  int max_retries = 4;             // attempts beyond the first
  double backoff_initial_s = 1.0;  // wait before the first retry (before jitter)
  double backoff_max_s = 30.0;     // cap of the exponential wait
  bool sleep = true;               // false: waits are computed and recorded, not slept (replay)
};

struct Exchange {
  HttpResponse response;     // the last response (any status: the caller reads errors from it)
  int retries = 0;           // attempts beyond the first
  double milliseconds = 0;   // the whole call, waits included
  std::vector<double> waits_s;  // each wait before a retry, as waited
};

bool retryable_status(int status);
// The wait a response asks for: `retry-after-ms` (OpenAI), then Retry-After in seconds or as an
// HTTP-date (RFC 9110); nullopt when absent or unreadable.
std::optional<double> retry_after_seconds(const HttpResponse& response);

// A response with a retryable status that must not be retried all the same (OpenAI's 429
// "insufficient_quota": waiting does not add credit).
using FinalResponse = std::function<bool(const HttpResponse&)>;

Result<Exchange> send_with_retries(Transport& transport, const HttpRequest& request, const ClientOptions& client,
                                   const RetryOptions& retry, const std::function<bool()>& cancelled,
                                   const FinalResponse& final_response = {});

}  // namespace profagent::http

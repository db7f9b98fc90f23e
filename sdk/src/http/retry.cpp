// The retry loop of send_with_retries (see retry.hpp): which failures are retried, how long to wait.
#include "retry.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "profagent/log.hpp"

namespace profagent::http {

namespace {

std::optional<double> number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(value) || value < 0) return std::nullopt;
  return value;
}

// Sleeps up to `seconds` in short steps; false when the user cancelled meanwhile.
bool wait_for(double seconds, const std::function<bool()>& cancelled) {
  const double until = seconds_now() + seconds;
  while (seconds_now() < until) {
    if (cancelled && cancelled()) return false;
    const double left = until - seconds_now();
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(0.02, std::max(0.0, left))));
  }
  return !(cancelled && cancelled());
}

std::string status_line(const HttpResponse& response) { return "HTTP " + std::to_string(response.status); }

}  // namespace

bool retryable_status(int status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

std::optional<double> retry_after_seconds(const HttpResponse& response) {
  if (auto ms = number(response.header("retry-after-ms"))) return *ms / 1000.0;
  const std::string value = response.header("retry-after");
  if (auto seconds = number(value)) return *seconds;
  if (value.empty()) return std::nullopt;
  std::tm parts{};
  const char* end = strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (!end || *end != '\0') return std::nullopt;
  const double delta = std::difftime(timegm(&parts), std::time(nullptr));
  return std::max(0.0, delta);
}

Result<Exchange> send_with_retries(Transport& transport, const HttpRequest& request, const ClientOptions& client,
                                   const RetryOptions& retry, const std::function<bool()>& cancelled,
                                   const FinalResponse& final_response) {
  static thread_local std::mt19937_64 random(std::random_device{}());
  Exchange exchange;
  const double start = seconds_now();
  const double deadline = start + client.total_timeout_s;
  for (int attempt = 0;; ++attempt) {
    if (cancelled && cancelled()) return Status(ErrorCode::kCancelled, "cancelled before the request was sent");
    Attempt result = transport.exchange(request, AttemptControl{deadline, cancelled});
    exchange.milliseconds = (seconds_now() - start) * 1000.0;
    std::optional<double> asked;
    std::string why;
    if (result.ok()) {
      exchange.response = std::move(result.response);
      const bool again = retryable_status(exchange.response.status) &&
                         !(final_response && final_response(exchange.response));
      if (!again) return exchange;
      asked = retry_after_seconds(exchange.response);
      why = status_line(exchange.response);
    } else {
      if (result.kind != FailureKind::kConnection && result.kind != FailureKind::kTimeout) return result.error;
      why = result.error.message();
    }
    auto give_up = [&](const std::string& reason) -> Result<Exchange> {
      if (result.ok()) return exchange;  // the caller reports the status with the vendor's message
      return Status(result.error.code(), result.error.message() + " (" + reason + ")");
    };
    if (attempt >= retry.max_retries)
      return give_up("gave up after " + std::to_string(attempt + 1) + " attempt(s)");
    double wait = std::min(retry.backoff_max_s, retry.backoff_initial_s * std::pow(2.0, attempt));
    wait *= std::uniform_real_distribution<double>(0.5, 1.0)(random);  // jitter: clients do not retry in step
    if (asked) wait = *asked;  // the server knows best when it will take requests again
    const double left = deadline - seconds_now();
    if (wait >= left)
      return give_up(fmt::format("a retry after {:.2f} s would pass total_timeout", wait));
    log().info("llm http: {}; retry {} of {} in {:.2f} s", why, attempt + 1, retry.max_retries, wait);
    if (retry.sleep && !wait_for(wait, cancelled))
      return Status(ErrorCode::kCancelled, "cancelled while waiting to retry");
    exchange.waits_s.push_back(wait);
    exchange.retries = attempt + 1;
  }
}

}  // namespace profagent::http

// URL parsing for the HTTP client (scheme://host[:port]/path?query; IPv6 in brackets), the loopback
// test behind "plain HTTP only to loopback", and the small shared pieces of http.hpp.
#include <algorithm>
#include <cctype>
#include <chrono>

#include "http.hpp"

namespace profagent::http {

namespace {
std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}
}  // namespace

std::string Url::origin() const {
  const bool default_port = (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
  const std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + shown_host + (default_port ? "" : ":" + port);
}

Result<Url> parse_url(const std::string& text) {
  Url url;
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string::npos)
    return Status(ErrorCode::kInvalidArgument, "URL '" + text + "' has no scheme (http:// or https://)");
  url.scheme = lower(text.substr(0, scheme_end));
  if (url.scheme != "http" && url.scheme != "https")
    return Status(ErrorCode::kInvalidArgument, "URL '" + text + "': scheme '" + url.scheme +
                                                   "' is not http or https");
  std::string rest = text.substr(scheme_end + 3);
  const auto path_start = rest.find_first_of("/?");
  std::string authority = rest.substr(0, path_start);
  url.target = path_start == std::string::npos ? "/" : rest.substr(path_start);
  if (url.target[0] == '?') url.target = "/" + url.target;
  if (authority.find('@') != std::string::npos)
    return Status(ErrorCode::kInvalidArgument, "URL '" + text + "': credentials in the URL are not accepted");
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return Status(ErrorCode::kInvalidArgument, "URL '" + text + "': unclosed '['");
    url.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Status(ErrorCode::kInvalidArgument, "URL '" + text + "': bad port");
      url.port = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) url.port = authority.substr(colon + 1);
  }
  if (url.host.empty()) return Status(ErrorCode::kInvalidArgument, "URL '" + text + "' has no host");
  if (url.port.empty()) url.port = url.scheme == "https" ? "443" : "80";
  if (!std::all_of(url.port.begin(), url.port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
      url.port.size() > 5 || std::stoi(url.port) == 0 || std::stoi(url.port) > 65535)
    return Status(ErrorCode::kInvalidArgument, "URL '" + text + "': port '" + url.port + "' is not 1-65535");
  return url;
}

bool is_loopback_host(const std::string& host) {
  const std::string name = lower(host);
  if (name == "localhost" || name == "::1" || name == "0:0:0:0:0:0:0:1") return true;
  if (name.size() > 10 && name.compare(name.size() - 10, 10, ".localhost") == 0) return true;
  return name.rfind("127.", 0) == 0 && name.find_first_not_of("0123456789.") == std::string::npos;
}

std::string HttpResponse::header(const std::string& name) const {
  const std::string wanted = lower(name);
  for (const auto& [key, value] : headers)
    if (lower(key) == wanted) return value;
  return "";
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace profagent::http

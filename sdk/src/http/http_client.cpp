// One HTTP(S) exchange with Boost.Beast: resolve, connect, TLS handshake (peer verification, SNI,
// host name), write the request, read the response under a size cap (chunked bodies are assembled
// by the parser). Each step is an async operation driven by a polling loop, which is what lets a
// deadline or the user's cancellation close the socket in the middle of any of them.
#include "http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <type_traits>

namespace profagent::http {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", std::round(seconds * 1000) / 1000);
  return text;
}

// Runs one started async operation until its handler ran; aborts it (through `abort`, which closes
// the socket) once `deadline` passes or the user cancels, and says which happened.
enum class Outcome { kDone, kTimedOut, kCancelled };

class Poller {
 public:
  Poller(net::io_context& io, const AttemptControl& control) : io_(io), control_(control) {}

  template <class Abort>
  Outcome wait(const bool& done, double deadline, Abort&& abort) {
    Outcome outcome = Outcome::kDone;
    io_.restart();
    while (!done) {
      io_.run_for(std::chrono::milliseconds(20));
      if (done || outcome != Outcome::kDone) continue;
      if (control_.cancelled && control_.cancelled()) {
        outcome = Outcome::kCancelled;
        abort();
      } else if (seconds_now() > deadline) {
        outcome = Outcome::kTimedOut;
        abort();
      }
    }
    return outcome;
  }

 private:
  net::io_context& io_;
  const AttemptControl& control_;
};

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

// What OpenSSL's verification said, in words ("certificate has expired", "hostname mismatch").
std::string verify_failure(SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return "";
  return X509_verify_cert_error_string(result);
}

class AttemptRunner {
 public:
  AttemptRunner(const ClientOptions& options, const HttpRequest& request, const AttemptControl& control)
      : options_(options), request_(request), control_(control), poller_(io_, control) {}

  Attempt run() {
    auto parsed = parse_url(request_.url);
    if (!parsed) return Attempt::failure(FailureKind::kFatal, ErrorCode::kInvalidArgument, parsed.status().message());
    url_ = parsed.value();
    const bool tls = url_.scheme == "https";
    if (!tls && !options_.allow_insecure_http && !is_loopback_host(url_.host))
      return Attempt::failure(FailureKind::kFatal, ErrorCode::kInvalidArgument,
                              "plain http:// to " + url_.origin() +
                                  " is refused: without TLS only loopback hosts may be called "
                                  "(allow_insecure_http: true allows it)");
    const double start = seconds_now();
    connect_deadline_ = std::min(control_.deadline_s, start + options_.connect_timeout_s);
    tcp::resolver::results_type endpoints;
    if (auto failed = resolve(endpoints)) return *failed;
    if (!tls && !options_.allow_insecure_http)
      for (const auto& entry : endpoints)
        if (!entry.endpoint().address().is_loopback())
          return Attempt::failure(FailureKind::kFatal, ErrorCode::kInvalidArgument,
                                  "plain http:// to " + url_.origin() + " resolves to " +
                                      entry.endpoint().address().to_string() +
                                      ", which is not loopback (allow_insecure_http: true allows it)");
    if (!tls) {
      beast::tcp_stream stream(io_);
      return over(stream, endpoints, nullptr);
    }
    ssl::context context(ssl::context::tls_client);
    boost::system::error_code ec;
    if (options_.ca_file.empty())
      context.set_default_verify_paths(ec);
    else
      context.load_verify_file(options_.ca_file, ec);
    if (ec)
      return Attempt::failure(FailureKind::kFatal, ErrorCode::kIo,
                              "cannot load the CA certificates" +
                                  (options_.ca_file.empty() ? std::string(" of the system")
                                                            : " from ca_file " + options_.ca_file) +
                                  ": " + ec.message());
    context.set_verify_mode(ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io_, context);
    SSL* handle = stream.native_handle();
    // SNI for names (not IP literals), and the name or address the certificate must carry.
    if (!is_ip_literal(url_.host)) {
      SSL_set_tlsext_host_name(handle, url_.host.c_str());
      SSL_set1_host(handle, url_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), url_.host.c_str());
    }
    return over(stream, endpoints, handle);
  }

 private:
  Attempt failure(Outcome outcome, const std::string& doing, double phase_limit, const char* phase_key) {
    if (outcome == Outcome::kCancelled)
      return Attempt::failure(FailureKind::kCancelled, ErrorCode::kCancelled, "cancelled while " + doing);
    const bool total = control_.deadline_s <= phase_limit + 1e-9;
    return Attempt::failure(FailureKind::kTimeout, ErrorCode::kRuntime,
                            "timed out " + doing + " (" +
                                (total ? std::string("total_timeout reached")
                                       : std::string(phase_key) + " " +
                                             seconds_text(phase_key[0] == 'c' ? options_.connect_timeout_s
                                                                             : options_.read_timeout_s)) +
                                ")");
  }

  std::optional<Attempt> resolve(tcp::resolver::results_type& endpoints) {
    tcp::resolver resolver(io_);
    bool done = false;
    boost::system::error_code ec;
    resolver.async_resolve(url_.host, url_.port, [&](boost::system::error_code e, tcp::resolver::results_type r) {
      ec = e;
      endpoints = std::move(r);
      done = true;
    });
    Outcome outcome = poller_.wait(done, connect_deadline_, [&] { resolver.cancel(); });
    if (outcome != Outcome::kDone)
      return failure(outcome, "resolving " + url_.host, connect_deadline_, "connect_timeout");
    if (ec)
      return Attempt::failure(FailureKind::kConnection, ErrorCode::kIo,
                              "cannot resolve " + url_.host + ": " + ec.message());
    return std::nullopt;
  }

  template <class Stream>
  Attempt over(Stream& stream, const tcp::resolver::results_type& endpoints, SSL* tls) {
    auto& socket = beast::get_lowest_layer(stream);
    auto abort = [&socket] {
      boost::system::error_code ignored;
      socket.socket().close(ignored);
    };
    (void)tls;  // read only on the TLS instantiation
    bool done = false;
    boost::system::error_code ec;
    socket.async_connect(endpoints, [&](boost::system::error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    Outcome outcome = poller_.wait(done, connect_deadline_, abort);
    if (outcome != Outcome::kDone) return failure(outcome, "connecting to " + url_.origin(), connect_deadline_, "connect_timeout");
    if (ec)
      return Attempt::failure(FailureKind::kConnection, ErrorCode::kIo,
                              "cannot connect to " + url_.origin() + ": " + ec.message());
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      done = false;
      stream.async_handshake(ssl::stream_base::client, [&](boost::system::error_code e) {
        ec = e;
        done = true;
      });
      outcome = poller_.wait(done, connect_deadline_, abort);
      if (outcome != Outcome::kDone)
        return failure(outcome, "in the TLS handshake with " + url_.origin(), connect_deadline_, "connect_timeout");
      if (ec) {
        const std::string why = verify_failure(tls);
        // A certificate that does not verify is never retried: it will not verify next time either.
        if (!why.empty())
          return Attempt::failure(FailureKind::kFatal, ErrorCode::kRuntime,
                                  "TLS: the certificate of " + url_.origin() + " was refused: " + why +
                                      (options_.ca_file.empty() ? "" : " (CAs from ca_file " + options_.ca_file + ")"));
        return Attempt::failure(FailureKind::kConnection, ErrorCode::kIo,
                                "TLS handshake with " + url_.origin() + " failed: " + ec.message());
      }
    }
    const double read_deadline = std::min(control_.deadline_s, seconds_now() + options_.read_timeout_s);
    bhttp::request<bhttp::string_body> message;
    message.version(11);
    message.method_string(request_.method);
    message.target(url_.target);
    const bool default_port = url_.port == (url_.scheme == "https" ? "443" : "80");
    message.set(bhttp::field::host, (url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host) +
                                        (default_port ? "" : ":" + url_.port));
    message.set(bhttp::field::user_agent, options_.user_agent);
    for (const auto& [name, value] : request_.headers) message.set(name, value);
    message.body() = request_.body;
    message.prepare_payload();
    done = false;
    bhttp::async_write(stream, message, [&](boost::system::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    outcome = poller_.wait(done, read_deadline, abort);
    if (outcome != Outcome::kDone)
      return failure(outcome, "sending the request to " + url_.origin(), read_deadline, "read_timeout");
    if (ec)
      return Attempt::failure(FailureKind::kConnection, ErrorCode::kIo,
                              "connection to " + url_.origin() + " failed while sending: " + ec.message());

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(static_cast<std::uint64_t>(options_.max_response_bytes));
    auto too_large = [&](std::optional<std::uint64_t> announced) {
      return Attempt::failure(FailureKind::kFatal, ErrorCode::kRuntime,
                              "the response of " + url_.origin() + " is larger than max_response_bytes (" +
                                  std::to_string(options_.max_response_bytes) + " bytes" +
                                  (announced ? "; it announced " + std::to_string(*announced) : std::string()) +
                                  "): refused");
    };
    auto read_failed = [&](const char* what) {
      return Attempt::failure(FailureKind::kConnection, ErrorCode::kIo,
                              "connection to " + url_.origin() + " dropped while reading the response " + what +
                                  " (" + ec.message() + ")");
    };
    // The header first: a Content-Length over the cap is refused before any of the body is read
    // (the parser's body_limit reports it when the header is parsed, and the check below says so
    // should a parser not); a chunked body, which announces no length, is cut by body_limit as it
    // is read. (One async_read of header and body together read a whole announced 50 MB body in
    // Boost 1.74 although body_limit was set.)
    done = false;
    bhttp::async_read_header(stream, buffer, parser, [&](boost::system::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    outcome = poller_.wait(done, read_deadline, abort);
    if (outcome != Outcome::kDone)
      return failure(outcome, "waiting for the response of " + url_.origin(), read_deadline, "read_timeout");
    if (ec == bhttp::error::body_limit) {
      const auto announced = parser.content_length();
      return too_large(announced ? std::optional<std::uint64_t>(*announced) : std::nullopt);
    }
    if (ec) return read_failed("header");
    if (const auto length = parser.content_length();
        length && *length > static_cast<std::uint64_t>(options_.max_response_bytes))
      return too_large(*length);
    if (!parser.is_done()) {
      done = false;
      bhttp::async_read(stream, buffer, parser, [&](boost::system::error_code e, std::size_t) {
        ec = e;
        done = true;
      });
      outcome = poller_.wait(done, read_deadline, abort);
      if (outcome != Outcome::kDone)
        return failure(outcome, "reading the response of " + url_.origin(), read_deadline, "read_timeout");
      if (ec == bhttp::error::body_limit) return too_large(std::nullopt);
      if (ec) return read_failed("body");
    }
    Attempt attempt;
    auto& response = parser.get();
    attempt.response.status = static_cast<int>(response.result_int());
    for (const auto& field : response)
      attempt.response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    attempt.response.body = std::move(response.body());
    boost::system::error_code ignored;
    socket.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return attempt;
  }

  const ClientOptions& options_;
  const HttpRequest& request_;
  const AttemptControl& control_;
  net::io_context io_;
  Poller poller_;
  Url url_;
  double connect_deadline_ = 0;
};

}  // namespace

Attempt HttpClient::exchange(const HttpRequest& request, const AttemptControl& control) {
  try {
    return AttemptRunner(options_, request, control).run();
  } catch (const std::exception& error) {  // Asio and Beast report some setup failures by throwing
    return Attempt::failure(FailureKind::kFatal, ErrorCode::kRuntime, std::string("HTTP client: ") + error.what());
  }
}

}  // namespace profagent::http

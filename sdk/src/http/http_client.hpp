#pragma once
// The real transport: HTTP/1.1 over TCP, or over TLS with the peer's certificate verified against the
// system CA bundle (or `ca_file`), SNI sent and the host name checked. One call is one attempt, run on
// its own io_context and polled every 20 ms, so the deadlines and the user's cancellation abort it
// wherever it is (resolve, connect, handshake, write, read).
#include "http.hpp"

namespace profagent::http {

class HttpClient : public Transport {
 public:
  explicit HttpClient(ClientOptions options) : options_(std::move(options)) {}
  Attempt exchange(const HttpRequest& request, const AttemptControl& control) override;
  const ClientOptions& options() const { return options_; }

 private:
  ClientOptions options_;
};

}  // namespace profagent::http

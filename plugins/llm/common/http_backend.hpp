#pragma once
// What the HTTP LLM backends (openai, anthropic, ollama, replay) share: their options and config
// fields, the API key read at call time, the vendor adapters (request out, reply in) and the backend
// class that sends a request through the HTTP client with retries and turns the answer into an
// LlmReply. Each backend plugin is this library plus a registration (plugins/llm/<id>/).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "http.hpp"
#include "profagent/llm.hpp"
#include "profagent/options.hpp"
#include "retry.hpp"

namespace profagent::llm {

struct HttpBackendOptions {
  std::string model;
  std::string base_url;
  std::string api_key_env;
  std::filesystem::path api_key_file;
  std::filesystem::path ca_file;
  double connect_timeout = 10;
  double read_timeout = 120;
  double total_timeout = 300;
  std::int64_t max_retries = 4;
  double backoff_initial = 1.0;
  double backoff_max = 30.0;
  std::int64_t max_response_bytes = 16 << 20;
  bool allow_insecure_http = false;
  std::string anthropic_version = "2023-06-01";  // anthropic
  std::int64_t num_ctx = 8192;                   // ollama
  // replay
  std::string mode = "replay";
  std::filesystem::path cassette;
  std::string inner = "openai";
  std::string match = "sequence";
};

// One vendor's wire format.
struct Vendor {
  std::string id;  // "openai", "anthropic", "ollama"
  std::string default_base_url;
  std::string default_model;
  std::string default_key_env;  // "" : no key unless api_key_env / api_key_file says so
  std::function<http::HttpRequest(const LlmRequest&, const HttpBackendOptions&, const std::string& key)> build;
  std::function<Result<LlmReply>(const http::HttpResponse&)> parse;          // a 2xx response
  std::function<std::string(const http::HttpResponse&)> error_message;       // the vendor's words for an error
  http::FinalResponse final_response;                                        // retryable status, final all the same
};
const Vendor& openai_vendor();
const Vendor& anthropic_vendor();
const Vendor& ollama_vendor();
const Vendor* find_vendor(const std::string& id);

// Config fields: those of every HTTP backend (model, base_url, key, TLS, timeouts, retries, cap), and
// the vendor's own (anthropic_version, num_ctx). The defaults shown are the vendor's.
void add_http_backend_fields(OptionsSchema<HttpBackendOptions>& schema, const Vendor& vendor);
void add_vendor_fields(OptionsSchema<HttpBackendOptions>& schema, const Vendor& vendor);

// The key, read when asked (so --validate and --plan never need it): from api_key_file if set, else
// the variable api_key_env names. An empty result with no error: the backend sends no key.
struct KeySource {
  std::string env;
  std::filesystem::path file;
  bool needed() const { return !env.empty() || !file.empty(); }
  Result<std::string> read() const;
};

// `text` with every occurrence of `secret` replaced by "***" (error bodies may echo a key).
std::string scrub(std::string text, const std::string& secret);

class HttpLlmBackend : public LlmBackend {
 public:
  // `transport` null: the real HTTP client with `options`' TLS, timeouts and cap.
  HttpLlmBackend(const Vendor& vendor, HttpBackendOptions options, std::unique_ptr<http::Transport> transport,
                 bool sleep_between_retries = true, std::string backend_id = "");
  std::string backend_id() const override { return backend_id_; }
  std::string model_name() const override { return options_.model; }
  Status check_ready() const override;
  Result<LlmReply> complete(const LlmRequest& request) override;

  http::ClientOptions client_options() const;

 protected:
  KeySource key_source() const { return KeySource{options_.api_key_env, options_.api_key_file}; }
  bool key_needed_ = true;  // replay mode answers from the cassette without one

 private:
  const Vendor& vendor_;
  HttpBackendOptions options_;
  std::unique_ptr<http::Transport> transport_;
  bool sleep_;
  std::string backend_id_;
};

// The provider factory of a vendor's backend (id = vendor id), config from add_http_backend_fields.
ProviderFactory make_http_backend_factory(const Vendor& vendor, const std::string& summary);

}  // namespace profagent::llm

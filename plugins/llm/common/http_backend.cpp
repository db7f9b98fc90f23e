// The HTTP LLM backend: key at call time, one request through the HTTP client with retries, the
// vendor's reply read into an LlmReply; every error names the backend and never carries the key.
#include "http_backend.hpp"

#include <cstdlib>
#include <map>

#include "http_client.hpp"
#include "profagent/fs.hpp"
#include "profagent/log.hpp"
#include "profagent/text.hpp"

namespace profagent::llm {

const Vendor* find_vendor(const std::string& id) {
  for (const Vendor* vendor : {&openai_vendor(), &anthropic_vendor(), &ollama_vendor()})
    if (vendor->id == id) return vendor;
  return nullptr;
}

std::string scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

Result<std::string> KeySource::read() const {
  if (!file.empty()) {
    auto text = read_file(file);
    if (!text) return Status(ErrorCode::kNotFound, "cannot read the API key file " + file.string() + " (api_key_file)");
    std::string key(trim(text.value()));
    if (key.empty()) return Status(ErrorCode::kInvalidArgument, "the API key file " + file.string() + " is empty (api_key_file)");
    return key;
  }
  if (env.empty()) return std::string();
  const char* value = std::getenv(env.c_str());
  if (!value || !*value)
    return Status(ErrorCode::kInvalidArgument, "the API key variable " + env + " is not set (api_key_env: " + env +
                                                   "; or give api_key_file)");
  return std::string(trim(value));
}

void add_http_backend_fields(OptionsSchema<HttpBackendOptions>& s, const Vendor& vendor) {
  using O = HttpBackendOptions;
  // A vendor default of "" is no default: the key is absent from --describe's defaults and the
  // member keeps "" (no key for ollama; the replay backend fills in its inner backend's).
  auto with_default = [](ConfigFieldBuilder builder, const std::string& value) {
    if (!value.empty()) builder.default_value(value);
    return builder;
  };
  with_default(s.field_without_default("model", &O::model), vendor.default_model).describe("the model to ask");
  with_default(s.field_without_default("base_url", &O::base_url), vendor.default_base_url)
      .describe("the server's base URL; plain http:// only to loopback unless allow_insecure_http");
  with_default(s.field_without_default("api_key_env", &O::api_key_env), vendor.default_key_env)
      .describe("the environment variable holding the API key, read at call time (\"\": no key)");
  s.field_without_default("api_key_file", &O::api_key_file)
      .describe("a file holding the API key (its content, trimmed; wins over api_key_env)");
  s.field_without_default("ca_file", &O::ca_file)
      .describe("PEM CA bundle to verify the server with, instead of the system's");
  s.field("connect_timeout", &O::connect_timeout, ConfigType::kDuration).min(0.001)
      .describe("resolve + connect + TLS handshake, per attempt");
  s.field("read_timeout", &O::read_timeout, ConfigType::kDuration).min(0.001)
      .describe("sending the request and reading the whole response, per attempt");
  s.field("total_timeout", &O::total_timeout, ConfigType::kDuration).min(0.001)
      .describe("the whole call: every attempt and every wait between them");
  s.field("max_retries", &O::max_retries).range(0, 20)
      .describe("attempts beyond the first, on connection errors, timeouts, 408, 409, 429, 5xx");
  s.field("backoff_initial", &O::backoff_initial, ConfigType::kDuration)
      .describe("the first retry's wait before jitter; doubled each retry (Retry-After wins)");
  s.field("backoff_max", &O::backoff_max, ConfigType::kDuration).describe("cap of the exponential wait");
  s.field("max_response_bytes", &O::max_response_bytes).min(1024)
      .describe("a larger response is refused (the call fails, not retried)");
  s.field("allow_insecure_http", &O::allow_insecure_http)
      .describe("allow plain http:// to hosts that are not loopback");
}

void add_vendor_fields(OptionsSchema<HttpBackendOptions>& s, const Vendor& vendor) {
  using O = HttpBackendOptions;
  if (vendor.id == "anthropic")
    s.field("anthropic_version", &O::anthropic_version).describe("the anthropic-version header");
  if (vendor.id == "ollama")
    s.field("num_ctx", &O::num_ctx).min(256).describe("options.num_ctx: the context window Ollama allocates");
}

HttpLlmBackend::HttpLlmBackend(const Vendor& vendor, HttpBackendOptions options,
                               std::unique_ptr<http::Transport> transport, bool sleep_between_retries,
                               std::string backend_id)
    : vendor_(vendor),
      options_(std::move(options)),
      transport_(std::move(transport)),
      sleep_(sleep_between_retries),
      backend_id_(backend_id.empty() ? vendor.id : std::move(backend_id)) {
  if (!transport_) transport_ = std::make_unique<http::HttpClient>(client_options());
}

http::ClientOptions HttpLlmBackend::client_options() const {
  http::ClientOptions client;
  client.connect_timeout_s = options_.connect_timeout;
  client.read_timeout_s = options_.read_timeout;
  client.total_timeout_s = options_.total_timeout;
  client.max_response_bytes = options_.max_response_bytes;
  client.ca_file = options_.ca_file.string();
  client.allow_insecure_http = options_.allow_insecure_http;
  client.user_agent = "profagent-llm/" + vendor_.id;
  return client;
}

Status HttpLlmBackend::check_ready() const {
  if (!key_needed_ || !key_source().needed()) return Status::ok();
  auto key = key_source().read();
  if (!key) return Status(key.status().code(), "llm backend '" + backend_id_ + "': " + key.status().message());
  return Status::ok();
}

Result<LlmReply> HttpLlmBackend::complete(const LlmRequest& request) {
  std::string key;
  if (key_needed_) {
    auto read = key_source().read();
    if (!read) return Status(read.status().code(), "llm backend '" + backend_id_ + "': " + read.status().message());
    key = std::move(read).value();
  }
  const std::string who = "llm backend '" + backend_id_ + "' (" + options_.base_url + ")";
  http::HttpRequest http_request = vendor_.build(request, options_, key);
  http::RetryOptions retry;
  retry.max_retries = static_cast<int>(options_.max_retries);
  retry.backoff_initial_s = options_.backoff_initial;
  retry.backoff_max_s = options_.backoff_max;
  retry.sleep = sleep_;
  auto sent = http::send_with_retries(*transport_, http_request, client_options(), retry, request.cancelled,
                                      vendor_.final_response);
  if (!sent) {
    const Status& error = sent.status();
    return Status(error.code(), who + ": " + scrub(error.message(), key));
  }
  http::Exchange& exchange = sent.value();
  const http::HttpResponse& response = exchange.response;
  if (response.status < 200 || response.status >= 300) {
    std::string said = scrub(vendor_.error_message(response), key);
    if (said.size() > 400) said = said.substr(0, 400) + "...";
    std::string message = who + ": HTTP " + std::to_string(response.status) + (said.empty() ? "" : ": " + said);
    if (exchange.retries > 0) message += " (after " + std::to_string(exchange.retries) + " retries)";
    if (response.status == 401 || response.status == 403)
      message += "; check the API key (" + (options_.api_key_file.empty() ? "api_key_env " + options_.api_key_env
                                                                           : "api_key_file " + options_.api_key_file.string()) + ")";
    return Status(response.status == 401 || response.status == 403 || response.status == 400 ? ErrorCode::kInvalidArgument
                                                                                             : ErrorCode::kRuntime,
                  message);
  }
  auto parsed = vendor_.parse(response);
  if (!parsed) return Status(parsed.status().code(), who + ": " + scrub(parsed.status().message(), key));
  LlmReply reply = std::move(parsed).value();
  reply.milliseconds = exchange.milliseconds;
  reply.retries = exchange.retries;
  if (reply.model.empty()) reply.model = options_.model;
  log().debug("{}: {} ms, {} retries, {} tokens in, {} out, finish {}", who, static_cast<int>(reply.milliseconds),
              reply.retries, reply.input_tokens, reply.output_tokens, reply.finish_reason);
  return reply;
}

ProviderFactory make_http_backend_factory(const Vendor& vendor, const std::string& summary) {
  // One schema per vendor for the process' lifetime: the factory's make refers to it.
  static std::map<std::string, std::unique_ptr<OptionsSchema<HttpBackendOptions>>> schemas;
  auto& schema = schemas[vendor.id];
  if (!schema) {
    schema = std::make_unique<OptionsSchema<HttpBackendOptions>>();
    add_http_backend_fields(*schema, vendor);
    add_vendor_fields(*schema, vendor);
  }
  ProviderFactory factory;
  factory.id = vendor.id;
  factory.interface = kLlmInterface;
  factory.summary = summary;
  bind_provider_options<HttpBackendOptions>(
      factory, *schema, [&vendor](HttpBackendOptions options) -> Result<std::unique_ptr<Provider>> {
        if (auto url = http::parse_url(options.base_url); !url)
          return Status(ErrorCode::kInvalidArgument, "base_url: " + url.status().message());
        return std::unique_ptr<Provider>(std::make_unique<HttpLlmBackend>(vendor, std::move(options), nullptr));
      });
  return factory;
}

}  // namespace profagent::llm

// The "replay" LLM backend plugin: an HTTP backend (inner: openai, anthropic or ollama) whose
// exchanges go to a cassette. mode: record calls the real server and writes every exchange (each
// attempt, retries included) to `cassette`; mode: replay answers from the cassette, offline, in the
// same order, with no key and no waiting between retries, so a run replays deterministically.
#include "cassette.hpp"
#include "http_backend.hpp"
#include "http_client.hpp"
#include "profagent/plugin.hpp"

namespace {

using profagent::ErrorCode;
using profagent::Result;
using profagent::Status;
using profagent::llm::HttpBackendOptions;

class ReplayBackend : public profagent::llm::HttpLlmBackend {
 public:
  ReplayBackend(const profagent::llm::Vendor& vendor, HttpBackendOptions options,
                std::unique_ptr<profagent::http::Transport> transport, bool replaying)
      : HttpLlmBackend(vendor, std::move(options), std::move(transport), !replaying, "replay") {
    key_needed_ = !replaying;
  }
};

// api_key_env's default: the inner backend's variable (OPENAI_API_KEY, ANTHROPIC_API_KEY; none for ollama).
constexpr const char* kInnersKeyEnv = "<inner's>";

const profagent::OptionsSchema<HttpBackendOptions>& replay_schema() {
  static const profagent::OptionsSchema<HttpBackendOptions> schema = [] {
    using O = HttpBackendOptions;
    profagent::OptionsSchema<O> s;
    s.field("mode", &O::mode, profagent::ConfigType::kEnum)
        .choices({"record", "replay"})
        .describe("record: call the server and write every exchange; replay: answer from the cassette, offline");
    s.field_without_default("cassette", &O::cassette).required().describe("the cassette file (JSON)");
    s.field("inner", &O::inner, profagent::ConfigType::kEnum)
        .choices({"openai", "anthropic", "ollama"})
        .describe("the HTTP backend whose wire format is recorded or replayed");
    s.field("match", &O::match, profagent::ConfigType::kEnum)
        .choices({"sequence", "exact"})
        .describe("replay: the n-th request gets the n-th response (method and URL checked); exact: the body too");
    // The inner backend's keys. base_url, model and api_key_env default to the inner backend's
    // (filled in by make_replay: the schema cannot know `inner` when it gives defaults).
    profagent::llm::Vendor inner_defaults = profagent::llm::openai_vendor();
    inner_defaults.default_base_url = "";
    inner_defaults.default_model = "";
    inner_defaults.default_key_env = kInnersKeyEnv;
    profagent::llm::add_http_backend_fields(s, inner_defaults);
    profagent::llm::add_vendor_fields(s, profagent::llm::anthropic_vendor());
    profagent::llm::add_vendor_fields(s, profagent::llm::ollama_vendor());
    return s;
  }();
  return schema;
}

Result<std::unique_ptr<profagent::Provider>> make_replay(HttpBackendOptions options) {
  const profagent::llm::Vendor* vendor = profagent::llm::find_vendor(options.inner);
  if (!vendor) return Status(ErrorCode::kInvalidArgument, "inner: no HTTP backend '" + options.inner + "'");
  if (options.base_url.empty()) options.base_url = vendor->default_base_url;
  if (options.model.empty()) options.model = vendor->default_model;
  if (options.api_key_env == kInnersKeyEnv) options.api_key_env = vendor->default_key_env;
  if (auto url = profagent::http::parse_url(options.base_url); !url)
    return Status(ErrorCode::kInvalidArgument, "base_url: " + url.status().message());
  const bool replaying = options.mode == "replay";
  std::unique_ptr<profagent::http::Transport> transport;
  if (replaying) {
    auto opened = profagent::llm::ReplayingTransport::open(options.cassette, options.match);
    if (!opened) return std::move(opened).take_status();
    transport = std::move(opened).value();
  } else {
    profagent::llm::HttpLlmBackend probe(*vendor, options, nullptr);  // the client options it would use
    transport = std::make_unique<profagent::llm::RecordingTransport>(
        std::make_unique<profagent::http::HttpClient>(probe.client_options()), options.cassette, vendor->id);
  }
  return std::unique_ptr<profagent::Provider>(
      std::make_unique<ReplayBackend>(*vendor, std::move(options), std::move(transport), replaying));
}

void register_llm_replay(profagent::Registrar& registrar) {
  profagent::ProviderFactory factory;
  factory.id = "replay";
  factory.interface = profagent::kLlmInterface;
  factory.summary =
      "records every HTTP exchange of an inner backend (openai, anthropic, ollama) to a cassette, or replays "
      "a cassette offline, deterministically; cassettes never hold the API key";
  profagent::bind_provider_options<HttpBackendOptions>(factory, replay_schema(), make_replay);
  registrar.add_provider(std::move(factory));
}

}  // namespace

PROFAGENT_PLUGIN("llm_replay", "0.1.0", register_llm_replay);

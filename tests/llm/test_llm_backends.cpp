// The HTTP LLM backends (openai, anthropic, ollama, replay), loaded from their plugin libraries,
// against a scripted vendor server on 127.0.0.1 speaking each vendor's wire format: replies,
// refusals, truncation, retries (429 + Retry-After measured, 500, 529), final errors (401, quota),
// timeouts, dropped connections, the size cap, streaming, TLS with a test CA, cancellation.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "llm_backend_support.hpp"
#include "profagent/fs.hpp"
#include "test_support.hpp"
#include "vendor_server.hpp"

namespace profagent::test {
namespace {

constexpr const char* kKey = "sk-test-0123456789abcdefSECRET";

struct KeyInEnvironment {
  explicit KeyInEnvironment(const char* name = "PROFAGENT_TEST_LLM_KEY") : name_(name) { setenv(name, kKey, 1); }
  ~KeyInEnvironment() { unsetenv(name_); }
  const char* name_;
};

Json openai_config(const VendorServer& server) {
  return {{"base_url", server.base_url() + "/v1"}, {"api_key_env", "PROFAGENT_TEST_LLM_KEY"},
          {"backoff_initial", 0.05}, {"backoff_max", 0.2}};
}

Json openai_reply(const std::string& content) { return {{"openai", {{"content", content}}}}; }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("openai sends Chat Completions with a strict json_schema and reads text, model and tokens") {
  KeyInEnvironment key;
  VendorServer server({openai_reply("{\"summary\": \"prune layer4\"}")});
  auto backend = make_backend("openai", openai_config(server));
  auto reply = backend->complete(plan_request());
  REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
  CHECK(reply->text == "{\"summary\": \"prune layer4\"}");
  CHECK(reply->finish_reason == "stop");
  CHECK(reply->model == "gpt-4o");
  CHECK(reply->input_tokens == 120);
  CHECK(reply->output_tokens == 30);
  CHECK(reply->retries == 0);
  CHECK(reply->milliseconds > 0);
  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0]["path"] == "/v1/chat/completions");
  CHECK(requests[0]["headers"]["Authorization"] == std::string("Bearer ") + kKey);
  Json body = Json::parse(requests[0]["body"].get<std::string>());
  CHECK(body["response_format"]["type"] == "json_schema");
  CHECK(body["response_format"]["json_schema"]["strict"] == true);
  CHECK(body["response_format"]["json_schema"]["name"] == "profagent_plan");
  CHECK(body["response_format"]["json_schema"]["schema"] == plan_request().response_schema);
  CHECK(body["messages"].size() == 2);
}

TEST_CASE("openai: a refusal comes back as LlmReply.refusal with finish reason refusal") {
  KeyInEnvironment key;
  VendorServer server({{{"openai", {{"refusal", "I can't help with that."}}}}});
  auto reply = make_backend("openai", openai_config(server))->complete(plan_request());
  REQUIRE(reply.is_ok());
  CHECK(reply->refusal == "I can't help with that.");
  CHECK(reply->finish_reason == "refusal");
  CHECK(reply->text.empty());
}

TEST_CASE("openai: finish_reason length is a truncated reply") {
  KeyInEnvironment key;
  VendorServer server({{{"openai", {{"content", "{\"summ"}, {"finish_reason", "length"}}}}});
  auto reply = make_backend("openai", openai_config(server))->complete(plan_request());
  REQUIRE(reply.is_ok());
  CHECK(reply->finish_reason == "length");
  CHECK(reply->raw_finish_reason == "length");
}

TEST_CASE("a 429 with Retry-After is retried after the wait the server asked for") {
  KeyInEnvironment key;
  VendorServer server({{{"status", 429}, {"headers", {{"Retry-After", "1"}}},
                        {"json", {{"error", {{"message", "Rate limit reached"}, {"code", "rate_limit_exceeded"}}}}}},
                       openai_reply("{\"summary\": \"ok\"}")});
  const auto start = std::chrono::steady_clock::now();
  auto reply = make_backend("openai", openai_config(server))->complete(plan_request());
  const double seconds = seconds_since(start);
  REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
  CHECK(reply->retries == 1);
  auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  const double gap = requests[1]["time"].get<double>() - requests[0]["time"].get<double>();
  MESSAGE("429 + Retry-After: 1 -> second request " << gap << " s after the first; call " << seconds << " s");
  CHECK(gap >= 0.98);  // honoured: not the 0.05 s backoff
  CHECK(gap < 1.6);
  CHECK(reply->milliseconds >= 1000);
}

TEST_CASE("a 500 then a good reply: one retry, the reply returned") {
  KeyInEnvironment key;
  VendorServer server({{{"status", 500}, {"json", {{"error", {{"message", "internal"}}}}}}, openai_reply("{}")});
  auto reply = make_backend("openai", openai_config(server))->complete(plan_request());
  REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
  CHECK(reply->retries == 1);
  CHECK(server.requests().size() == 2);
}

TEST_CASE("a 401 is not retried, says so clearly and never echoes the key") {
  KeyInEnvironment key;
  // OpenAI's 401 quotes the key it got (partly masked by the real service; here in full).
  VendorServer server({{{"status", 401},
                        {"json", {{"error", {{"message", std::string("Incorrect API key provided: ") + kKey},
                                             {"type", "invalid_request_error"}, {"code", "invalid_api_key"}}}}}}});
  auto reply = make_backend("openai", openai_config(server))->complete(plan_request());
  REQUIRE_FALSE(reply.is_ok());
  const std::string message = reply.status().to_string();
  MESSAGE(message);
  CHECK(server.requests().size() == 1);
  CHECK(contains(message, "HTTP 401"));
  CHECK(contains(message, "Incorrect API key provided"));
  CHECK(contains(message, "PROFAGENT_TEST_LLM_KEY"));
  CHECK_FALSE(contains(message, kKey));
}

TEST_CASE("openai: a 429 for an exhausted quota is final, not retried") {
  KeyInEnvironment key;
  VendorServer server({{{"status", 429},
                        {"json", {{"error", {{"message", "You exceeded your current quota"}, {"code", "insufficient_quota"}}}}}}});
  auto reply = make_backend("openai", openai_config(server))->complete(plan_request());
  REQUIRE_FALSE(reply.is_ok());
  CHECK(server.requests().size() == 1);
  CHECK(contains(reply.status().message(), "insufficient_quota"));
}

TEST_CASE("anthropic forces JSON through a tool and returns the tool input as the text") {
  KeyInEnvironment key;
  VendorServer server({{{"anthropic", {{"tool_input", {{"summary", "prune layer4"}}}}}}});
  auto backend = make_backend("anthropic", {{"base_url", server.base_url()}, {"api_key_env", "PROFAGENT_TEST_LLM_KEY"}});
  auto reply = backend->complete(plan_request());
  REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
  CHECK(Json::parse(reply->text) == Json{{"summary", "prune layer4"}});
  CHECK(reply->finish_reason == "stop");
  CHECK(reply->raw_finish_reason == "tool_use");
  CHECK(reply->input_tokens == 200);
  CHECK(reply->output_tokens == 40);
  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0]["path"] == "/v1/messages");
  CHECK(requests[0]["headers"]["x-api-key"] == kKey);
  CHECK(requests[0]["headers"]["anthropic-version"] == "2023-06-01");
  Json body = Json::parse(requests[0]["body"].get<std::string>());
  CHECK(body["max_tokens"] == 512);
  CHECK(body["system"] == "You plan pruning.");
  CHECK(body["messages"].size() == 1);
  CHECK(body["tool_choice"] == Json{{"type", "tool"}, {"name", "profagent_plan"}});
  CHECK(body["tools"][0]["input_schema"] == plan_request().response_schema);
}

TEST_CASE("anthropic: stop_reason max_tokens is a truncated reply") {
  KeyInEnvironment key;
  VendorServer server({{{"anthropic", {{"tool_input", Json::object()}, {"stop_reason", "max_tokens"}}}}});
  auto reply = make_backend("anthropic", {{"base_url", server.base_url()}, {"api_key_env", "PROFAGENT_TEST_LLM_KEY"}})
                   ->complete(plan_request());
  REQUIRE(reply.is_ok());
  CHECK(reply->finish_reason == "length");
  CHECK(reply->raw_finish_reason == "max_tokens");
}

TEST_CASE("anthropic: 529 overloaded is retried") {
  KeyInEnvironment key;
  VendorServer server({{{"status", 529}, {"json", {{"type", "error"}, {"error", {{"type", "overloaded_error"}, {"message", "Overloaded"}}}}}},
                       {{"anthropic", {{"tool_input", {{"summary", "ok"}}}}}}});
  auto reply = make_backend("anthropic", {{"base_url", server.base_url()}, {"api_key_env", "PROFAGENT_TEST_LLM_KEY"},
                                          {"backoff_initial", 0.05}})
                   ->complete(plan_request());
  REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
  CHECK(reply->retries == 1);
  CHECK(server.requests().size() == 2);
}

TEST_CASE("ollama sends format = the schema, stream false and num_ctx; reads the single reply") {
  VendorServer server({{{"ollama", {{"content", "{\"summary\": \"ok\"}"}}}}});
  auto reply = make_backend("ollama", {{"base_url", server.base_url()}, {"num_ctx", 16384}})->complete(plan_request());
  REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
  CHECK(reply->text == "{\"summary\": \"ok\"}");
  CHECK(reply->input_tokens == 90);
  CHECK(reply->output_tokens == 25);
  Json body = Json::parse(server.requests().at(0)["body"].get<std::string>());
  CHECK(body["stream"] == false);
  CHECK(body["format"] == plan_request().response_schema);
  CHECK(body["options"]["num_ctx"] == 16384);
  CHECK(server.requests().at(0)["headers"].count("Authorization") == 0);
}

TEST_CASE("ollama: a streamed NDJSON answer (Ollama's default) is assembled") {
  const std::string content = "{\"summary\": \"prune the widest layers first\"}";
  VendorServer server({{{"ollama", {{"content", content}, {"done_reason", "length"}}}, {"stream", true}}});
  auto reply = make_backend("ollama", {{"base_url", server.base_url()}})->complete(plan_request());
  REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
  CHECK(reply->text == content);
  CHECK(reply->finish_reason == "length");
  CHECK(reply->output_tokens == 25);
}

TEST_CASE("a server that never answers: the call fails within total_timeout") {
  KeyInEnvironment key;
  VendorServer server({{{"action", "hang"}}});
  Json config = openai_config(server);
  config["read_timeout"] = 0.5;
  config["total_timeout"] = 1.5;
  const auto start = std::chrono::steady_clock::now();
  auto reply = make_backend("openai", config)->complete(plan_request());
  const double seconds = seconds_since(start);
  REQUIRE_FALSE(reply.is_ok());
  MESSAGE(reply.status().to_string() << " after " << seconds << " s");
  CHECK(contains(reply.status().message(), "timed out"));
  CHECK(seconds < 1.5 + 0.3);
  CHECK(seconds > 0.45);
}

TEST_CASE("a connection dropped mid-response is retried, then reported") {
  KeyInEnvironment key;
  VendorServer server({{{"action", "drop"}}});
  Json config = openai_config(server);
  config["max_retries"] = 1;
  auto reply = make_backend("openai", config)->complete(plan_request());
  REQUIRE_FALSE(reply.is_ok());
  MESSAGE(reply.status().to_string());
  CHECK(server.requests().size() == 2);
  CHECK(contains(reply.status().message(), "dropped while reading the response"));
}

TEST_CASE("a 50 MB response is refused at the size cap, not retried") {
  KeyInEnvironment key;
  VendorServer server({{{"action", "big"}, {"size", 50 << 20}}});
  const auto start = std::chrono::steady_clock::now();
  auto reply = make_backend("openai", openai_config(server))->complete(plan_request());
  REQUIRE_FALSE(reply.is_ok());
  MESSAGE(reply.status().to_string() << " after " << seconds_since(start) << " s");
  CHECK(contains(reply.status().message(), "max_response_bytes (16777216 bytes; it announced 52428800)"));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("a 50 MB chunked response (no Content-Length) is cut at the size cap while it is read") {
  KeyInEnvironment key;
  VendorServer server({{{"action", "big"}, {"size", 50 << 20}, {"chunked", true}}});
  Json config = openai_config(server);
  config["max_response_bytes"] = 1 << 20;
  auto reply = make_backend("openai", config)->complete(plan_request());
  REQUIRE_FALSE(reply.is_ok());
  MESSAGE(reply.status().to_string());
  CHECK(contains(reply.status().message(), "larger than max_response_bytes (1048576 bytes): refused"));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("TLS with a test CA: the valid certificate is accepted, a wrong host name and an expired one are refused") {
  KeyInEnvironment key;
  TempDir certs("llm_certs");
  make_test_certs(certs.path());
  const std::string ca = (certs.path() / "ca.pem").string();
  auto call = [&](const std::string& name, const std::string& ca_file) {
    VendorServer server({openai_reply("{}")}, {certs.path() / (name + ".pem"), certs.path() / (name + ".key")});
    Json config = openai_config(server);
    config["max_retries"] = 0;
    if (!ca_file.empty()) config["ca_file"] = ca_file;
    return make_backend("openai", config)->complete(plan_request());
  };
  // CHECKs, not REQUIREs: each refusal is reported even when another one is broken.
  auto good = call("good", ca);
  CHECK_MESSAGE(good.is_ok(), good.status().to_string());
  auto untrusted = call("good", "");  // the system's CAs do not know the test CA
  CHECK_FALSE(untrusted.is_ok());
  CHECK(contains(untrusted.status().to_string(), "unable to get local issuer certificate"));
  auto wrong_host = call("wrong_host", ca);
  CHECK_FALSE(wrong_host.is_ok());
  CHECK(contains(wrong_host.status().to_string(), "hostname mismatch"));
  auto expired = call("expired", ca);
  CHECK_FALSE(expired.is_ok());
  CHECK(contains(expired.status().to_string(), "certificate has expired"));
}

TEST_CASE("plain http:// is refused for a host that is not loopback unless allow_insecure_http") {
  KeyInEnvironment key;
  // Bounded, should the check ever let the call through to the unroutable TEST-NET address.
  auto reply = make_backend("openai", {{"base_url", "http://192.0.2.7/v1"}, {"api_key_env", "PROFAGENT_TEST_LLM_KEY"},
                                       {"connect_timeout", 0.5}, {"total_timeout", 1}, {"max_retries", 0}})
                   ->complete(plan_request());
  REQUIRE_FALSE(reply.is_ok());
  CHECK(contains(reply.status().message(), "allow_insecure_http"));
}

TEST_CASE("a missing key: check_ready and the call name the variable, not a value") {
  unsetenv("PROFAGENT_TEST_ABSENT_KEY");
  auto backend = make_backend("openai", {{"api_key_env", "PROFAGENT_TEST_ABSENT_KEY"}});
  Status ready = backend->check_ready();
  REQUIRE_FALSE(ready.is_ok());
  CHECK(contains(ready.message(), "PROFAGENT_TEST_ABSENT_KEY is not set"));
  auto reply = backend->complete(plan_request());
  REQUIRE_FALSE(reply.is_ok());
  CHECK(contains(reply.status().message(), "PROFAGENT_TEST_ABSENT_KEY"));
  CHECK(make_backend("ollama", Json::object())->check_ready().is_ok());
}

TEST_CASE("cancellation aborts a call in flight") {
  KeyInEnvironment key;
  VendorServer server({{{"action", "hang"}}});
  std::atomic<bool> stop{false};
  LlmRequest request = plan_request();
  request.cancelled = [&stop] { return stop.load(); };
  std::thread user([&stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  Json config = openai_config(server);
  config["read_timeout"] = 3;  // without cancellation the call would end here, 3 s in
  config["total_timeout"] = 3;
  const auto start = std::chrono::steady_clock::now();
  auto reply = make_backend("openai", config)->complete(request);
  const double seconds = seconds_since(start);
  user.join();
  MESSAGE(reply.status().to_string() << " after " << seconds << " s");
  REQUIRE_FALSE(reply.is_ok());
  CHECK(reply.status().code() == ErrorCode::kCancelled);
  CHECK(seconds < 0.8);
}

TEST_CASE("replay: a cassette recorded against the server replays the same reply offline, without the key") {
  TempDir dir("llm_cassette");
  const auto cassette = dir.path() / "cassette.json";
  LlmReply recorded;
  std::string base_url;
  {
    KeyInEnvironment key;
    VendorServer server({{{"status", 500}}, openai_reply("{\"summary\": \"recorded\"}")});
    Json config = openai_config(server);
    base_url = config["base_url"].get<std::string>();
    config["mode"] = "record";
    config["cassette"] = cassette.string();
    auto reply = make_backend("replay", config)->complete(plan_request());
    REQUIRE_MESSAGE(reply.is_ok(), reply.status().to_string());
    recorded = reply.value();
  }
  auto text = read_file(cassette);
  REQUIRE(text.is_ok());
  CHECK_FALSE(contains(text.value(), kKey));
  CHECK_FALSE(contains(text.value(), "Authorization"));
  CHECK(Json::parse(text.value())["exchanges"].size() == 2);
  // The server is gone and the key unset: the replay needs neither, and sleeps no retry wait.
  Json config = {{"mode", "replay"}, {"cassette", cassette.string()}, {"base_url", base_url},
                 {"api_key_env", "PROFAGENT_TEST_LLM_KEY"}};
  auto backend = make_backend("replay", config);
  CHECK(backend->check_ready().is_ok());
  auto replayed = backend->complete(plan_request());
  REQUIRE_MESSAGE(replayed.is_ok(), replayed.status().to_string());
  CHECK(replayed->text == recorded.text);
  CHECK(replayed->text == "{\"summary\": \"recorded\"}");
  CHECK(replayed->retries == 1);
  CHECK(replayed->model == recorded.model);
  CHECK(replayed->input_tokens == recorded.input_tokens);
  // One more request than recorded: a clear error, not a network call.
  auto beyond = backend->complete(plan_request());
  REQUIRE_FALSE(beyond.is_ok());
  CHECK(contains(beyond.status().message(), "holds 2 exchange(s); request 3 has no recording"));
  // Another URL than the recording's is refused.
  config["base_url"] = "http://127.0.0.1:9/v1";
  auto mismatch = make_backend("replay", config)->complete(plan_request());
  REQUIRE_FALSE(mismatch.is_ok());
  CHECK(contains(mismatch.status().message(), "the recording has POST " + base_url));
}

}  // namespace profagent::test

#pragma once
// The LLM backend plugins as the kernel loads them (build tree's plugin directory), and a backend made
// from one with a config, for the tests of tests/llm.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "profagent/kernel/plugin_manager.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/llm.hpp"

namespace profagent::test {

inline kernel::Registry& llm_registry() {
  static kernel::Registry registry;
  static kernel::PluginManager manager(registry);
  static const bool loaded = [] {
    for (const char* id : {"openai", "anthropic", "ollama", "replay"})
      manager.load_file(std::string(PROFAGENT_PLUGIN_OUTPUT_DIR) + "/libllm_" + id + ".so");
    return true;
  }();
  (void)loaded;
  return registry;
}

inline Result<std::unique_ptr<LlmBackend>> try_make_backend(const std::string& id, const Json& config) {
  const ProviderFactory* factory = llm_registry().find_provider(kLlmInterface, id);
  if (!factory) return Status(ErrorCode::kNotFound, "no llm plugin " + id);
  auto resolved = factory->config.resolve(config);
  if (!resolved) return std::move(resolved).take_status();
  auto made = make_provider(*factory, resolved.value());
  if (!made) return std::move(made).take_status();
  auto* backend = dynamic_cast<LlmBackend*>(made.value().get());
  if (!backend) return Status(ErrorCode::kInternal, id + " is not an LlmBackend");
  made.value().release();
  return std::unique_ptr<LlmBackend>(backend);
}

inline std::unique_ptr<LlmBackend> make_backend(const std::string& id, const Json& config) {
  auto made = try_make_backend(id, config);
  REQUIRE_MESSAGE(made.is_ok(), made.status().to_string());
  return std::move(made).value();
}

// The request the fixture tests send: a system and a user message, a strict object schema.
inline LlmRequest plan_request() {
  LlmRequest request;
  request.messages = {{"system", "You plan pruning."}, {"user", "Plan for layer1.0.conv1."}};
  request.response_schema = {{"type", "object"},
                             {"properties", {{"summary", {{"type", "string"}}}}},
                             {"required", {"summary"}},
                             {"additionalProperties", false}};
  request.max_tokens = 512;
  return request;
}

}  // namespace profagent::test

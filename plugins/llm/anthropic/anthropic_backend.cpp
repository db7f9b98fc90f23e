// The "anthropic" LLM backend plugin: the shared HTTP backend with the anthropic wire format
// (plugins/llm/common/vendor_anthropic.cpp). docs/llm_backends.md describes its config.
#include "http_backend.hpp"
#include "profagent/plugin.hpp"

namespace {

void register_llm_anthropic(profagent::Registrar& registrar) {
  registrar.add_provider(profagent::llm::make_http_backend_factory(
      profagent::llm::anthropic_vendor(),
      "Anthropic Messages API, JSON forced through a tool (tool_choice type tool); key from ANTHROPIC_API_KEY"));
}

}  // namespace

PROFAGENT_PLUGIN("llm_anthropic", "0.1.0", register_llm_anthropic);

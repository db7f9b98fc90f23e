// The "openai" LLM backend plugin: the shared HTTP backend with the openai wire format
// (plugins/llm/common/vendor_openai.cpp). docs/llm_backends.md describes its config.
#include "http_backend.hpp"
#include "profagent/plugin.hpp"

namespace {

void register_llm_openai(profagent::Registrar& registrar) {
  registrar.add_provider(profagent::llm::make_http_backend_factory(
      profagent::llm::openai_vendor(),
      "OpenAI Chat Completions (or any OpenAI-compatible server through base_url), JSON by response_format json_schema strict; key from OPENAI_API_KEY"));
}

}  // namespace

PROFAGENT_PLUGIN("llm_openai", "0.1.0", register_llm_openai);

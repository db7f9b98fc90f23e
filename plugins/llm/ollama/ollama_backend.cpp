// The "ollama" LLM backend plugin: the shared HTTP backend with the ollama wire format
// (plugins/llm/common/vendor_ollama.cpp). docs/llm_backends.md describes its config.
#include "http_backend.hpp"
#include "profagent/plugin.hpp"

namespace {

void register_llm_ollama(profagent::Registrar& registrar) {
  registrar.add_provider(profagent::llm::make_http_backend_factory(
      profagent::llm::ollama_vendor(),
      "Ollama /api/chat with format = the reply schema, stream false, options.num_ctx; no key by default"));
}

}  // namespace

PROFAGENT_PLUGIN("llm_ollama", "0.1.0", register_llm_ollama);

// The key function of the "llm" provider interface, so its vtable and typeinfo live in the SDK alone.
#include "profagent/llm.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN
LlmBackend::~LlmBackend() = default;
PROFAGENT_ABI_NAMESPACE_END

#pragma once
// The "llm" provider interface: a backend that answers one chat request with text (JSON expected).
// The analysis agent builds the request (messages from its prompt templates, the reply's JSON Schema,
// and the structured evidence the prompt was made from), calls `complete`, and validates the reply
// itself: a backend is never trusted to return something safe. Backends are provider plugins
// (plugins/llm/<id>): the embedded `heuristic` planner (offline; it reads `evidence`, not the prose),
// and the HTTP backends (openai, anthropic, ollama, replay). No LibTorch here.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/provider.hpp"
#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

inline constexpr const char* kLlmInterface = "llm";

struct LlmMessage {
  std::string role;     // "system", "user" or "assistant"
  std::string content;  // untrusted data (layer names from a model file) only ever inside JSON values
};

struct LlmRequest {
  std::vector<LlmMessage> messages;
  std::string schema_name = "profagent_plan";  // the name vendors want beside a JSON Schema
  Json response_schema;                        // JSON Schema of the reply (OpenAI strict form); null: free text
  Json evidence;               // the structured facts the prompt was made from; offline planners read this
  std::int64_t max_tokens = 4096;
  double temperature = 0.0;
  std::function<bool()> cancelled;  // true once the user asked to stop: a call in flight is aborted
};

struct LlmReply {
  std::string text;           // the reply's content as the vendor returned it (may carry fences or prose)
  std::string finish_reason;  // normalised: "stop", "length" (truncated), "refusal", "error"; vendor's raw
  std::string raw_finish_reason;  // value kept beside it (e.g. "max_tokens", "end_turn")
  std::string refusal;        // non-empty when the model refused (OpenAI message.refusal)
  std::string model;          // the model that answered, as the vendor names it
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  double milliseconds = 0;    // wall time of the call, retries and waits included
  int retries = 0;            // HTTP attempts beyond the first
};

// Exported whole: agents dynamic_cast the Provider they get to it across libraries.
class PROFAGENT_SDK_API LlmBackend : public Provider {
 public:
  ~LlmBackend() override;  // the key function, in the SDK
  virtual std::string backend_id() const = 0;  // "heuristic", "openai", ...
  virtual std::string model_name() const = 0;  // the configured model ("gpt-4o"); the planner's own name offline
  // Whether the backend can be called now (e.g. its API key's variable is set); the error names what
  // is missing (the variable, never its value). Called before a run's first stage.
  virtual Status check_ready() const { return Status::ok(); }
  virtual Result<LlmReply> complete(const LlmRequest& request) = 0;
};

PROFAGENT_ABI_NAMESPACE_END

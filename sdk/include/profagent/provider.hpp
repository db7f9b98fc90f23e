#pragma once
// Providers are capabilities that agents use (LLM backends, pruning importance criteria,
// quantization schemes, dataset formats). A provider implements an interface named by a string
// (e.g. "llm", "importance", "dataset"); an agent asks its context for one by interface and id, and
// gets it through dynamic_cast to the C++ interface class, which lives in the SDK.
#include <functional>
#include <memory>
#include <string>

#include "profagent/config_schema.hpp"
#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

// The base of every provider interface class; dynamic_cast across libraries, so exported whole.
class PROFAGENT_SDK_API Provider {
 public:
  virtual ~Provider();  // the key function, in the SDK
};

using ProviderMaker = std::function<Result<std::unique_ptr<Provider>>(const Config& config)>;

struct PROFAGENT_SDK_API ProviderFactory {
  std::string id;         // unique among providers of the same interface, e.g. "openai"
  std::string interface;  // e.g. "llm"
  std::string summary;
  ConfigSchema config;
  ProviderMaker make;  // called by the kernel only through make_provider() below
};

// Calls factory.make(config) and turns anything it throws into a Status ("making provider 'ID' threw:
// ..."); a null provider from an ok Result is refused too. The kernel makes providers only through
// this (AgentContext::make_provider), so no exception of a provider's factory leaves it.
PROFAGENT_SDK_API Result<std::unique_ptr<Provider>> make_provider(const ProviderFactory& factory,
                                                                  const Config& config) noexcept;

PROFAGENT_ABI_NAMESPACE_END

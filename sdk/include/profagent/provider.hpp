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

namespace profagent {

class Provider {
 public:
  virtual ~Provider();
};

using ProviderMaker = std::function<Result<std::unique_ptr<Provider>>(const Config& config)>;

struct ProviderFactory {
  std::string id;         // unique among providers of the same interface, e.g. "openai"
  std::string interface;  // e.g. "llm"
  std::string summary;
  ConfigSchema config;
  ProviderMaker make;
};

}  // namespace profagent

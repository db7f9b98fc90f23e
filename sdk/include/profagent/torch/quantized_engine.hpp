#pragma once
// The quantized engine a model was packed for, set before the model is loaded and put back after.
// Packed int8 weights (quantized::linear_prepack's LinearPackedParamsBase) are re-packed by their
// __setstate__ when the file is loaded, with the process's engine at that moment: a model quantized
// for oneDNN must therefore be loaded with oneDNN selected, not whatever the process defaults to.
// The engine travels in the model's profagent_meta.json as {"quantization": {"engine": "onednn"}}.
#include <filesystem>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::torch_tk {

// The engines this LibTorch can run (at::globalContext().supportedQEngines(), "none" left out), in
// LibTorch's order: e.g. {"qnnpack", "onednn"} for Debian's x86 build, which has no FBGEMM.
std::vector<std::string> supported_quantized_engines();
// The engine selected now ("onednn", "qnnpack", "fbgemm", "x86" or "none").
std::string current_quantized_engine();
// The engine profagent packs with here: oneDNN where present (x86), else FBGEMM/x86, else QNNPACK
// (ARM); kUnsupported when the build has none.
Result<std::string> preferred_quantized_engine();

// The engine a model's metadata names (metadata["quantization"]["engine"]), or "" when none.
std::string engine_of_metadata(const Json& metadata);

// Selects `engine` for the scope and puts the previous one back. An empty engine leaves everything
// as it is. An engine this LibTorch lacks: ok() is false and error() says which ones it has; the
// process's engine is left unchanged.
class QuantizedEngineGuard {
 public:
  explicit QuantizedEngineGuard(const std::string& engine);
  ~QuantizedEngineGuard();
  QuantizedEngineGuard(const QuantizedEngineGuard&) = delete;
  QuantizedEngineGuard& operator=(const QuantizedEngineGuard&) = delete;
  bool ok() const { return error_.is_ok(); }
  const Status& error() const { return error_; }

 private:
  int previous_ = -1;  // at::QEngine as int; -1: nothing changed
  Status error_;
};

// profagent_meta.json read from the archive's directory alone (no tensor is deserialized): null
// when the file has none; kParseError for an unreadable archive or an entry that is not an object.
Result<Json> read_stored_metadata(const std::filesystem::path& file);

}  // namespace profagent::torch_tk

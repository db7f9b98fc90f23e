// The quantized engine guard and the metadata read that precedes a model's load (quantized_engine.hpp).
#include "profagent/torch/quantized_engine.hpp"

#include <ATen/Context.h>
#include <caffe2/serialize/inline_container.h>

#include <algorithm>

#include "profagent/torch/errors.hpp"
#include "profagent/torch/model_artifact.hpp"

namespace profagent::torch_tk {

namespace {

std::string engine_name(at::QEngine engine) {
  switch (engine) {
    case at::QEngine::NoQEngine: return "none";
    case at::QEngine::FBGEMM: return "fbgemm";
    case at::QEngine::QNNPACK: return "qnnpack";
    case at::QEngine::ONEDNN: return "onednn";
    case at::QEngine::X86: return "x86";
  }
  return "unknown";
}

const at::QEngine* find_supported(const std::string& name) {
  for (const at::QEngine& engine : at::globalContext().supportedQEngines())
    if (engine != at::QEngine::NoQEngine && engine_name(engine) == name) return &engine;
  return nullptr;
}

}  // namespace

std::vector<std::string> supported_quantized_engines() {
  std::vector<std::string> names;
  for (at::QEngine engine : at::globalContext().supportedQEngines())
    if (engine != at::QEngine::NoQEngine) names.push_back(engine_name(engine));
  return names;
}

std::string current_quantized_engine() { return engine_name(at::globalContext().qEngine()); }

Result<std::string> preferred_quantized_engine() {
  const std::vector<std::string> names = supported_quantized_engines();
  for (const char* wanted : {"onednn", "x86", "fbgemm", "qnnpack"})
    if (std::find(names.begin(), names.end(), wanted) != names.end()) return std::string(wanted);
  return Status(ErrorCode::kUnsupported, "this LibTorch has no quantized engine (supportedQEngines is empty)");
}

std::string engine_of_metadata(const Json& metadata) {
  if (!metadata.is_object() || !metadata.contains("quantization")) return "";
  const Json& section = metadata["quantization"];
  if (!section.is_object() || !section.contains("engine") || !section["engine"].is_string()) return "";
  return section["engine"].get<std::string>();
}

QuantizedEngineGuard::QuantizedEngineGuard(const std::string& engine) {
  if (engine.empty()) return;
  const at::QEngine* found = find_supported(engine);
  if (found == nullptr) {
    std::string have;
    for (const std::string& name : supported_quantized_engines()) have += (have.empty() ? "" : ", ") + name;
    error_ = Status(ErrorCode::kUnsupported, "quantized engine '" + engine + "' is not in this LibTorch (it has: " +
                                                 (have.empty() ? std::string("none") : have) + ")");
    return;
  }
  previous_ = static_cast<int>(at::globalContext().qEngine());
  at::globalContext().setQEngine(*found);
}

QuantizedEngineGuard::~QuantizedEngineGuard() {
  if (previous_ >= 0) at::globalContext().setQEngine(static_cast<at::QEngine>(previous_));
}

Result<Json> read_stored_metadata(const std::filesystem::path& file) {
  try {
    // The stream reader opens the ZIP directory only: no tensor, no packed weight is deserialized.
    caffe2::serialize::PyTorchStreamReader reader(file.string());
    const std::string record = std::string("extra/") + kModelMetadataFile;
    if (!reader.hasRecord(record)) return Json();
    auto [data, size] = reader.getRecord(record);
    Json meta = Json::parse(std::string(static_cast<const char*>(data.get()), size), nullptr, false);
    if (meta.is_discarded() || !meta.is_object())
      return Status(ErrorCode::kParseError, "the profagent_meta.json stored in " + file.string() + " is not a JSON object");
    return meta;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kParseError, "cannot read the metadata of " + file.string() + ": " + torch_error_reason(e));
  }
}

}  // namespace profagent::torch_tk

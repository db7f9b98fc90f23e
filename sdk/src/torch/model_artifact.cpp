#include "profagent/torch/model_artifact.hpp"

#include <torch/script.h>
#include <unistd.h>

#include "profagent/fs.hpp"
#include "profagent/plugin.hpp"
#include "profagent/torch/quantized_engine.hpp"

namespace profagent {

namespace fs = std::filesystem;

namespace {
std::int64_t count_parameters(const torch::jit::Module& module) {
  std::int64_t total = 0;
  for (const auto& parameter : module.parameters()) total += parameter.numel();
  return total;
}
}  // namespace

ModelArtifact::ModelArtifact(std::shared_ptr<const torch::jit::Module> module, Json provenance, Json metadata)
    : module_(std::move(module)), summary_(std::move(provenance)), metadata_(std::move(metadata)) {
  if (!summary_.is_object()) summary_ = Json{{"provenance", summary_}};
  summary_["params"] = count_parameters(*module_);
}

std::string ModelArtifact::display_name() const {
  for (const char* key : {"path", "source"})
    if (summary_.contains(key) && summary_[key].is_string()) return summary_[key].get<std::string>();
  return "the model";
}

Status ModelArtifact::save(const fs::path& dir) const {
  fs::path target = dir / "model.pt";
  fs::path tmp = dir / (".model.pt.tmp-" + std::to_string(::getpid()));
  try {
    torch::jit::ExtraFilesMap extra;
    if (!metadata_.is_null()) extra[kModelMetadataFile] = metadata_.dump();
    module_->save(tmp.string(), extra);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return Status(ErrorCode::kIo, "cannot save the TorchScript model to " + target.string() + ": " + e.what());
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot rename " + tmp.string() + ": " + ec.message());
  return Status::ok();
}

Json derived_provenance(const Json& parent, const std::string& stage) {
  Json provenance = Json::object();
  for (const char* key : {"source", "format", "device", "methods"})
    if (parent.contains(key)) provenance[key] = parent[key];
  provenance["eval"] = true;
  Json derived_from{{"stage", stage}};
  for (const char* key : {"path", "sha256", "params"})
    if (parent.contains(key)) derived_from[key] = parent[key];
  provenance["derived_from"] = std::move(derived_from);
  return provenance;
}

Result<ArtifactPtr> load_model_artifact(const fs::path& dir) {
  auto header = read_json(dir / "artifact.json");
  if (!header) return std::move(header).take_status();
  fs::path file = dir / "model.pt";
  // A quantized model's packed weights re-pack while the file loads: its engine first.
  // An unreadable archive is left to torch::jit::load, whose error says more.
  auto stored = torch_tk::read_stored_metadata(file);
  torch_tk::QuantizedEngineGuard engine(stored ? torch_tk::engine_of_metadata(stored.value()) : std::string());
  if (!engine.ok()) return Status(engine.error()).with_context("loading " + file.string());
  try {
    torch::jit::ExtraFilesMap extra{{kModelMetadataFile, ""}};
    auto module = std::make_shared<torch::jit::Module>(torch::jit::load(file.string(), c10::nullopt, extra));
    module->eval();
    Json provenance = header->value("summary", Json::object());
    provenance.erase("params");
    Json metadata = extra[kModelMetadataFile].empty() ? Json() : Json::parse(extra[kModelMetadataFile], nullptr, false);
    if (metadata.is_discarded()) metadata = Json();
    return ArtifactPtr(std::make_shared<ModelArtifact>(std::move(module), std::move(provenance), std::move(metadata)));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kParseError, "cannot load the TorchScript model " + file.string() + ": " + e.what());
  }
}

void add_model_artifact_loader(Registrar& registrar) {
  registrar.add_artifact_loader(kinds::kModel, [](const std::string&, const fs::path& dir) {
    return load_model_artifact(dir);
  });
}

}  // namespace profagent

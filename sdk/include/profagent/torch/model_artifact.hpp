#pragma once
// The model artifact: a TorchScript module with where it came from (part of profagent::torch).
// Including this header does not pull in LibTorch; include <torch/script.h> where the module is used.
#include <filesystem>
#include <memory>
#include <string>

#include "profagent/artifact.hpp"

namespace torch {
namespace jit {
struct Module;
}
}  // namespace torch

namespace profagent {

// The name of the extra file (archive entry "extra/<name>") that carries a model's metadata.
constexpr const char* kModelMetadataFile = "profagent_meta.json";

class ModelArtifact : public Artifact {
 public:
  // `provenance` is free-form (source, sha256, format...); params and size are added to the summary.
  // The module is shared, not copied: an agent that changes a model must clone it first, because
  // artifacts are immutable once published. `metadata` is what the model file stores as
  // profagent_meta.json (input shapes, dtype, how it was made): a model derived from another keeps
  // its parent's, and save() writes it into model.pt, so no stage loses the input shape.
  ModelArtifact(std::shared_ptr<const torch::jit::Module> module, Json provenance, Json metadata = Json());

  std::string kind() const override { return kinds::kModel; }
  Json summary() const override { return summary_; }
  Status save(const std::filesystem::path& dir) const override;  // writes model.pt

  const torch::jit::Module& module() const { return *module_; }
  std::shared_ptr<const torch::jit::Module> module_ptr() const { return module_; }
  // The profagent_meta.json object, or null when the model has none.
  const Json& metadata() const { return metadata_; }
  // What messages call the model: its file path, else its source, else "the model".
  std::string display_name() const;

 private:
  std::shared_ptr<const torch::jit::Module> module_;
  Json summary_;
  Json metadata_;
};

// The provenance of a model derived from `parent` (its summary) by stage `stage`: it keeps where its
// ancestor came from (source, format, device, methods); the file hash, size and params described the
// ancestor's file, not this model, so they move under derived_from.
Json derived_provenance(const Json& parent, const std::string& stage);

// Loads a ModelArtifact saved by ModelArtifact::save.
Result<ArtifactPtr> load_model_artifact(const std::filesystem::path& dir);

inline namespace PROFAGENT_ABI_NAMESPACE { class Registrar; }  // the SDK contract's ABI namespace
// Registers load_model_artifact as the loader of kind "model", so that a resumed run reads back the
// models this plugin wrote. The kernel has no LibTorch: every plugin that produces models calls this
// from its register function (registering the same loader twice is harmless).
void add_model_artifact_loader(Registrar& registrar);

}  // namespace profagent

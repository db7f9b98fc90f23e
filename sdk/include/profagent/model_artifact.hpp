#pragma once
// The model artifact: a TorchScript module with where it came from. Including this header does not
// pull in LibTorch; include <torch/script.h> (or profagent/torch/...) where the module is used.
#include <filesystem>
#include <memory>

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

 private:
  std::shared_ptr<const torch::jit::Module> module_;
  Json summary_;
  Json metadata_;
};

// Loads a ModelArtifact saved by ModelArtifact::save (registered as the loader of kind "model").
Result<ArtifactPtr> load_model_artifact(const std::filesystem::path& dir);

}  // namespace profagent

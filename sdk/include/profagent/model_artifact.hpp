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

class ModelArtifact : public Artifact {
 public:
  // `provenance` is free-form (source, sha256, format...); params and size are added to the summary.
  // The module is shared, not copied: an agent that changes a model must clone it first, because
  // artifacts are immutable once published.
  ModelArtifact(std::shared_ptr<const torch::jit::Module> module, Json provenance);

  std::string kind() const override { return kinds::kModel; }
  Json summary() const override { return summary_; }
  Status save(const std::filesystem::path& dir) const override;  // writes model.pt

  const torch::jit::Module& module() const { return *module_; }
  std::shared_ptr<const torch::jit::Module> module_ptr() const { return module_; }

 private:
  std::shared_ptr<const torch::jit::Module> module_;
  Json summary_;
};

// Loads a ModelArtifact saved by ModelArtifact::save (registered as the loader of kind "model").
Result<ArtifactPtr> load_model_artifact(const std::filesystem::path& dir);

}  // namespace profagent

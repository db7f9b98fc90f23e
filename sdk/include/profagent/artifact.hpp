#pragma once
// Artifacts are the typed, immutable values that stages exchange through the kernel's blackboard.
// Each has a kind (checked between ports before a run), a JSON summary (used in `until:` conditions,
// reports and LLM prompts) and a save(dir) that writes it so that a resumed run can load it back.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

namespace kinds {
constexpr const char* kModel = "model";
constexpr const char* kShapeSpec = "shape_spec";
constexpr const char* kProfile = "profile";
constexpr const char* kPlan = "plan";
constexpr const char* kMetrics = "metrics";
constexpr const char* kDecision = "decision";
constexpr const char* kHistory = "history";
constexpr const char* kJson = "json";
// Only for input ports: accepts an artifact of any kind.
constexpr const char* kAny = "any";
}  // namespace kinds

// The kinds the SDK knows. Plugins may use other kinds; ports are matched by exact name.
PROFAGENT_SDK_API const std::vector<std::string>& builtin_artifact_kinds();
PROFAGENT_SDK_API bool port_kinds_compatible(const std::string& output_kind, const std::string& input_kind);

// Implemented by plugins (and the SDK's libraries); dynamic_cast across libraries, so exported whole.
class PROFAGENT_SDK_API Artifact {
 public:
  virtual ~Artifact();  // the key function, in the SDK
  virtual std::string kind() const = 0;
  virtual Json summary() const = 0;
  // Writes the artifact's payload into `dir` (which exists and is empty). The kernel writes
  // `artifact.json` (kind + summary) beside it and makes the whole directory appear atomically.
  // The kernel calls it only through save_artifact, which turns an exception into a Status.
  virtual Status save(const std::filesystem::path& dir) const = 0;
};

using ArtifactPtr = std::shared_ptr<const Artifact>;

// An artifact that is one JSON document: plans, metrics, decisions, histories, shape specs,
// profiles and generic JSON all use it. The summary is the document itself.
class PROFAGENT_SDK_API JsonArtifact : public Artifact {
 public:
  JsonArtifact(std::string kind, Json data) : kind_(std::move(kind)), data_(std::move(data)) {}
  ~JsonArtifact() override;  // the key function, in the SDK
  std::string kind() const override { return kind_; }
  Json summary() const override { return data_; }
  Status save(const std::filesystem::path& dir) const override;  // writes data.json
  const Json& data() const { return data_; }

 private:
  std::string kind_;
  Json data_;
};

// Makes an artifact of a kind back from a directory written by save(). The kernel uses these when
// it resumes a run. JSON kinds are registered by the SDK; the model kind by the SDK's torch part;
// plugins register loaders for kinds of their own through the Registrar.
using ArtifactLoader = std::function<Result<ArtifactPtr>(const std::string& kind, const std::filesystem::path& dir)>;

PROFAGENT_SDK_API void register_artifact_loader(const std::string& kind, ArtifactLoader loader);
// Reads `artifact.json` in `dir` for the kind, then calls that kind's loader (JSON loader when the
// kind has none registered and the directory holds data.json).
PROFAGENT_SDK_API Result<ArtifactPtr> load_artifact(const std::filesystem::path& dir);
// Writes artifact.json and the payload of `artifact` into `dir`, atomically: into a sibling temp
// directory first, renamed to `dir` when complete. `dir` must not exist. Anything that
// artifact.save(), kind() or summary() throws becomes a Status ("saving a 'KIND' artifact threw: ...")
// and the temporary directory is removed: `dir` is then absent, never half-written.
PROFAGENT_SDK_API Status save_artifact(const Artifact& artifact, const std::filesystem::path& dir) noexcept;

PROFAGENT_ABI_NAMESPACE_END

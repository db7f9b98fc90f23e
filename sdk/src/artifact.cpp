#include "profagent/artifact.hpp"

#include <unistd.h>

#include <map>
#include <mutex>

#include "profagent/fs.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

namespace fs = std::filesystem;

// Key functions: the vtables and typeinfo of Artifact and JsonArtifact live in libprofagent_sdk.
Artifact::~Artifact() = default;
JsonArtifact::~JsonArtifact() = default;

const std::vector<std::string>& builtin_artifact_kinds() {
  static const std::vector<std::string> kKinds = {kinds::kModel,   kinds::kShapeSpec, kinds::kProfile,
                                                  kinds::kPlan,    kinds::kMetrics,   kinds::kDecision,
                                                  kinds::kHistory, kinds::kJson};
  return kKinds;
}

bool port_kinds_compatible(const std::string& output_kind, const std::string& input_kind) {
  return input_kind == kinds::kAny || output_kind == input_kind;
}

Status JsonArtifact::save(const fs::path& dir) const { return write_json_atomic(dir / "data.json", data_); }

namespace {

std::mutex g_loaders_mutex;
std::map<std::string, ArtifactLoader>& loaders() {
  static std::map<std::string, ArtifactLoader> table;
  return table;
}

Result<ArtifactPtr> load_json_artifact(const std::string& kind, const fs::path& dir) {
  auto data = read_json(dir / "data.json");
  if (!data) return std::move(data).take_status();
  return ArtifactPtr(std::make_shared<JsonArtifact>(kind, std::move(data).value()));
}

}  // namespace

void register_artifact_loader(const std::string& kind, ArtifactLoader loader) {
  std::lock_guard<std::mutex> lock(g_loaders_mutex);
  loaders()[kind] = std::move(loader);
}

Result<ArtifactPtr> load_artifact(const fs::path& dir) {
  auto header = read_json(dir / "artifact.json");
  if (!header) return std::move(header).take_status().with_context("loading the artifact in " + dir.string());
  if (!header->contains("kind") || !(*header)["kind"].is_string())
    return Status(ErrorCode::kParseError, (dir / "artifact.json").string() + ": no \"kind\" string");
  std::string kind = (*header)["kind"].get<std::string>();

  ArtifactLoader loader;
  {
    std::lock_guard<std::mutex> lock(g_loaders_mutex);
    auto it = loaders().find(kind);
    if (it != loaders().end()) loader = it->second;
  }
  Result<ArtifactPtr> loaded = Status(ErrorCode::kInternal, "unset");
  if (loader) {
    try {
      loaded = loader(kind, dir);
    } catch (...) {
      loaded = status_of_current_exception("the loader of artifact kind '" + kind + "' threw");
    }
  } else if (fs::exists(dir / "data.json")) {
    loaded = load_json_artifact(kind, dir);
  } else {
    return Status(ErrorCode::kUnsupported,
                  "no loader for artifact kind '" + kind + "' (in " + dir.string() + "); is its plugin loaded?");
  }
  if (!loaded) return std::move(loaded).take_status().with_context("loading the artifact in " + dir.string());
  return loaded;
}

Status save_artifact(const Artifact& artifact, const fs::path& dir) noexcept {
  // Everything of the artifact's (kind, summary, save) is plugin code: whatever it throws becomes the
  // Status, after the temporary directory is removed, so `dir` is either complete or absent.
  std::string kind = "?";
  fs::path tmp;
  auto fail = [&](Status status) {
    std::error_code ignored;
    if (!tmp.empty()) fs::remove_all(tmp, ignored);
    return std::move(status).with_context("saving a '" + kind + "' artifact to " + dir.string());
  };
  try {
    kind = artifact.kind();
  } catch (...) {
    return fail(status_of_current_exception("the artifact's kind() threw"));
  }
  try {
    std::error_code ec;
    if (fs::exists(dir, ec)) return Status(ErrorCode::kIo, "artifact directory already exists: " + dir.string());
    tmp = dir.parent_path() / ("." + dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) {
      Status status(ErrorCode::kIo, "cannot create " + tmp.string() + ": " + ec.message());
      tmp.clear();  // not ours to remove
      return fail(std::move(status));
    }

    Status saved;
    try {
      saved = artifact.save(tmp);
    } catch (...) {
      saved = status_of_current_exception("save() of a '" + kind + "' artifact threw");
    }
    if (!saved) return fail(saved);
    Json summary;
    try {
      summary = artifact.summary();
    } catch (...) {
      return fail(status_of_current_exception("the summary() of a '" + kind + "' artifact threw"));
    }
    Json header = {{"kind", kind}, {"format", 1}, {"summary", std::move(summary)}};
    Status written = write_json_atomic(tmp / "artifact.json", header);
    if (!written) return fail(written);
    fs::rename(tmp, dir, ec);
    if (ec) return fail(Status(ErrorCode::kIo, "cannot rename " + tmp.string() + ": " + ec.message()));
    return Status::ok();
  } catch (...) {  // std::bad_alloc, filesystem_error from a path operation
    return fail(status_of_current_exception("saving a '" + kind + "' artifact threw"));
  }
}

PROFAGENT_ABI_NAMESPACE_END

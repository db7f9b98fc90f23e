#include "profile_artifact.hpp"

#include "profagent/fs.hpp"

namespace profagent::agents {

ProfileArtifact::ProfileArtifact(Json profile, Json chrome_trace, std::string markdown)
    : profile_(std::move(profile)), trace_(std::move(chrome_trace)), markdown_(std::move(markdown)) {
  // The summary says where the trace is, so a reader of artifact.json finds it.
  if (!trace_.is_null()) profile_["trace_file"] = kTraceFile;
}

Status ProfileArtifact::save(const std::filesystem::path& dir) const {
  PROFAGENT_RETURN_IF_ERROR(write_json_atomic(dir / "data.json", profile_));
  // Compact: a trace of a large model has thousands of events, and viewers don't need indentation.
  if (!trace_.is_null()) PROFAGENT_RETURN_IF_ERROR(write_file_atomic(dir / kTraceFile, trace_.dump()));
  if (!markdown_.empty()) PROFAGENT_RETURN_IF_ERROR(write_file_atomic(dir / kReportSectionFile, markdown_));
  return Status::ok();
}

}  // namespace profagent::agents

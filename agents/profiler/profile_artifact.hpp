#pragma once
// The profiling stage's output: a `profile` artifact whose summary is the profile document and whose
// saved directory also holds the Chrome trace of one forward (trace.json, opens in Perfetto or
// chrome://tracing) and the run report's Markdown section (report.md, which the kernel copies into
// runs/<id>/report.md).
#include <filesystem>
#include <string>

#include "profagent/artifact.hpp"
#include "profagent/json.hpp"

namespace profagent::agents {

constexpr const char* kTraceFile = "trace.json";
constexpr const char* kReportSectionFile = "report.md";

class ProfileArtifact : public Artifact {
 public:
  ProfileArtifact(Json profile, Json chrome_trace, std::string markdown);
  std::string kind() const override { return kinds::kProfile; }
  Json summary() const override { return profile_; }
  // data.json (the document), trace.json (when there is a trace), report.md.
  Status save(const std::filesystem::path& dir) const override;
  const Json& chrome_trace() const { return trace_; }
  const std::string& markdown() const { return markdown_; }

 private:
  Json profile_;
  Json trace_;
  std::string markdown_;
};

}  // namespace profagent::agents

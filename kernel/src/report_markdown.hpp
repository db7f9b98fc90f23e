#pragma once
// runs/<id>/report.md: the run for people. A header and a stage table from report.json, then the
// Markdown sections the run's artifacts carry: an artifact whose saved directory holds `report.md`
// (e.g. the profiler's top-layer table) contributes that file, in the order the stages completed.
// The kernel knows nothing of what a section says; plugins decide by writing the file in save().
#include <filesystem>
#include <string>
#include <vector>

#include "profagent/json.hpp"

namespace profagent::kernel {

// The file name an artifact's save(dir) writes its section to.
constexpr const char* kReportSectionFile = "report.md";

struct ReportSection {
  std::string key;       // the blackboard key of the artifact, e.g. "profile.profile"
  std::string markdown;  // the section as the artifact wrote it
};

// The section in an artifact's saved directory; nullopt-like empty string when it has none.
std::string read_report_section(const std::filesystem::path& artifact_dir);

std::string render_report_markdown(const Json& report, const std::vector<ReportSection>& sections);

}  // namespace profagent::kernel

#include "report_markdown.hpp"

#include <fmt/format.h>

#include "profagent/fs.hpp"

namespace profagent::kernel {

namespace {
// "load 0.12 s, warm-up 0.40 s, timed forwards 2.10 s": the phases a stage recorded, in order.
std::string phases_text(const Json& phases) {
  std::string text;
  for (const auto& phase : phases)
    text += fmt::format("{}{} {:.2f} s", text.empty() ? "" : ", ", phase.value("phase", std::string()),
                        phase.value("seconds", 0.0));
  return text;
}
}  // namespace

std::string read_report_section(const std::filesystem::path& artifact_dir) {
  std::error_code ec;
  const auto path = artifact_dir / kReportSectionFile;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  auto text = read_file(path);
  return text ? text.value() : std::string();
}

std::string render_report_markdown(const Json& report, const std::vector<ReportSection>& sections) {
  const Json& workflow = report.value("workflow", Json::object());
  std::string text = fmt::format("# Run of {}\n\n", workflow.value("name", std::string("workflow")));
  text += fmt::format("- workflow: `{}`\n- status: **{}** after {:.2f} s\n- started: {}\n",
                      workflow.value("file", std::string()), report.value("status", std::string()),
                      report.value("seconds", 0.0), report.value("started_at", std::string()));
  if (report.contains("finished_at")) text += fmt::format("- finished: {}\n", report["finished_at"].get<std::string>());
  text += fmt::format("- run directory: `{}`\n", report.value("run_dir", std::string()));
  if (report.contains("error")) text += fmt::format("- error: {}\n", report["error"].get<std::string>());
  text += "\n## Stages\n\n| stage | agent | status | seconds | where the time went |\n|---|---|---|---:|---|\n";
  for (const auto& stage : report.value("stages", Json::array())) {
    std::string status = stage.value("status", std::string());
    if (stage.value("resumed", false)) status += " (resumed)";
    text += fmt::format("| {} | {} | {} | {:.2f} | {} |\n", stage.value("id", std::string()),
                        stage.value("loop", false) ? std::string("loop") : stage.value("agent", std::string()),
                        status, stage.value("seconds", 0.0), phases_text(stage.value("phases", Json::array())));
  }
  for (const auto& section : sections) {
    text += fmt::format("\n## {}\n\n", section.key);
    text += section.markdown;
    if (!section.markdown.empty() && section.markdown.back() != '\n') text += '\n';
  }
  return text;
}

}  // namespace profagent::kernel

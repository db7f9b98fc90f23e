#include "profagent/kernel/diagnostics.hpp"

namespace profagent::kernel {

std::string SourceLocation::to_string() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Status diagnostics_to_status(const std::vector<Diagnostic>& diagnostics) {
  if (diagnostics.empty()) return Status::ok();
  std::string text;
  for (const auto& d : diagnostics) {
    if (!text.empty()) text += "\n";
    text += d.to_string();
  }
  return Status(ErrorCode::kValidation, text);
}

}  // namespace profagent::kernel

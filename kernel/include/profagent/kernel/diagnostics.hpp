#pragma once
// Where a workflow problem is, and what it is: every workflow error is reported as
// "file:line:col: message" before anything runs.
#include <string>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::kernel {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
  std::string to_string() const;  // "file:line:col" (or "file" when line is unknown)
};

struct Diagnostic {
  SourceLocation location;
  std::string message;
  std::string to_string() const { return location.to_string() + ": " + message; }
};

// All diagnostics as one kValidation Status, one "file:line:col: message" per line.
Status diagnostics_to_status(const std::vector<Diagnostic>& diagnostics);

}  // namespace profagent::kernel

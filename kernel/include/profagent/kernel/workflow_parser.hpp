#pragma once
// Reads a workflow YAML file into a Workflow: structure, known keys, vars with typed --set
// overrides, and interpolation. Every problem comes back as a Diagnostic with file:line:col.
#include <string>
#include <vector>

#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

struct ParseOutcome {
  Workflow workflow;                     // meaningful only when diagnostics is empty
  std::vector<Diagnostic> diagnostics;  // every problem found, in file order
  bool ok() const { return diagnostics.empty(); }
};

ParseOutcome parse_workflow_file(const std::string& path, const ParseOptions& options);
ParseOutcome parse_workflow_text(const std::string& text, const std::string& file_name,
                                 const ParseOptions& options);

}  // namespace profagent::kernel

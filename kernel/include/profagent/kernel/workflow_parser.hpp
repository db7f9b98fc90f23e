#pragma once
// Reads a workflow YAML file into a Workflow: structure, known keys, vars with typed --set
// overrides, and interpolation. Every problem comes back as a Diagnostic with file:line:col.
#include <string>
#include <vector>

#include "profagent/kernel/workflow.hpp"
#include "profagent/status.hpp"

namespace profagent::kernel {

struct ParseOutcome {
  Workflow workflow;                     // meaningful only when diagnostics is empty
  std::vector<Diagnostic> diagnostics;  // every problem found, in file order
  bool ok() const { return diagnostics.empty(); }
};

ParseOutcome parse_workflow_file(const std::string& path, const ParseOptions& options);
ParseOutcome parse_workflow_text(const std::string& text, const std::string& file_name,
                                 const ParseOptions& options);

// The value of `--set NAME=TEXT` for a var that is not a string: TEXT read as one YAML node (a plain
// scalar typed as in a workflow, a quoted string, a flow list or map). An error says why it is not one.
Result<Json> read_set_value(const std::string& text);

}  // namespace profagent::kernel

#pragma once
// Running a helper program (the torchvision exporter) as a child process: an argv list handed to
// posix_spawn, never a shell command line, so a model name or keyword value can't be interpreted
// by a shell. No LibTorch in this header.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::agents {

struct ChildResult {
  int exit_code = -1;    // the exit status, or 128 + signal number when the child was killed
  int signal = 0;        // the signal that ended the child, 0 when it exited
  long pid = 0;          // the child's pid (its temp files are named after it)
  std::string out;       // all of stdout
  std::string err_tail;  // the last lines of stderr (at most ChildOptions::err_tail_lines)
};

struct ChildOptions {
  // Added to (or replacing in) the parent's environment.
  std::map<std::string, std::string> env;
  std::size_t err_tail_lines = 12;
  // Called with each complete stderr line as it arrives (progress of a long export).
  std::function<void(const std::string&)> on_err_line;
};

// Runs argv[0] (a path, not searched in PATH) with argv, stdin from /dev/null, and waits for it.
// Errors only when the child cannot be started (kNotFound for a missing program, kIo otherwise); a
// child that runs and fails is a ChildResult with its exit code.
Result<ChildResult> run_child(const std::vector<std::string>& argv, const ChildOptions& options = {});

}  // namespace profagent::agents

#pragma once
// Runs a validated workflow: stages in topological order, loops with carry / next / until / decide,
// outputs on the blackboard and in the run directory, report.json after every stage. A stage whose
// stage.json exists from an earlier run (--resume) is loaded, not run again. SIGINT stops the run
// between stages (or inside an agent that checks cancelled()) and leaves it resumable.
#include <string>

#include "profagent/json.hpp"
#include "profagent/kernel/registry.hpp"
#include "profagent/kernel/run_store.hpp"
#include "profagent/kernel/workflow.hpp"

namespace profagent::kernel {

enum class RunStatus { kCompleted, kFailed, kInterrupted };
const char* to_string(RunStatus status);

struct RunOutcome {
  RunStatus status = RunStatus::kCompleted;
  Status error;  // why it failed or stopped
  Json report;   // what report.json holds
  // The Markdown sections the run's artifacts carry (report.md beside their payload), concatenated;
  // report.md has them after its header. The CLI prints them on stdout.
  std::string report_sections;
};

class Executor {
 public:
  Executor(const Workflow& workflow, const Registry& registry, const RunStore& store);
  RunOutcome run();

 private:
  struct State;
  const Workflow& workflow_;
  const Registry& registry_;
  const RunStore& store_;
};

}  // namespace profagent::kernel

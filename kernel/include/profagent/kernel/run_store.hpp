#pragma once
// The run directory (DESIGN §5):
//   workflow.yaml        the workflow text as read; run.json: where it came from, --set values
//   resolved.json        the interpolated stage graph, secrets redacted
//   logs/run.log         every log line of the run
//   stages/<path>/       one directory per stage execution ("prune", "refine/002/prune"):
//       outputs/<port>/  each output artifact (artifact.json + payload), written atomically
//       work/            the agent's scratch directory
//       stage.json       written last: its presence means the stage completed (resume skips it)
//   outputs/<name>/      the workflow's declared outputs
//   report.json          run status, per-stage status and seconds, loop summaries; rewritten
//                        atomically after every stage
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "profagent/artifact.hpp"
#include "profagent/json.hpp"

namespace profagent::kernel {

struct CompletedStage {
  std::map<std::string, ArtifactPtr> outputs;  // port -> artifact loaded from disk
  double seconds = 0;
};

class RunStore {
 public:
  explicit RunStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // A new run: `dir` must not exist or be an empty directory.
  Status create();
  // An earlier run to resume: `dir` must hold run.json.
  Status open_existing();

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path stage_dir(const std::string& stage_path) const { return dir_ / "stages" / stage_path; }
  std::filesystem::path work_dir(const std::string& stage_path) const { return stage_dir(stage_path) / "work"; }
  std::filesystem::path log_file() const { return dir_ / "logs" / "run.log"; }

  // Every file the store writes passes through `scrub` (the run's secret values replaced; cli.cpp).
  void set_scrub(std::function<std::string(std::string)> scrub) { scrub_ = std::move(scrub); }
  Status write_json(const std::string& relative_path, const Json& value) const;
  Status write_text(const std::string& relative_path, const std::string& text) const;
  Result<Json> read_json(const std::string& relative_path) const;

  // Clears whatever an unfinished execution of this stage left, and makes its work directory.
  Status begin_stage(const std::string& stage_path) const;
  Status save_output(const std::string& stage_path, const std::string& port, const Artifact& artifact) const;
  // Writes stage.json last: from then on the stage counts as completed.
  Status complete_stage(const std::string& stage_path, const Json& record) const;
  // Removes a stage's outputs after a failure or interruption (the work dir is kept for inspection).
  void discard_stage_outputs(const std::string& stage_path) const;
  // The outputs of a stage completed in an earlier run, or nullopt when it did not complete.
  Result<std::optional<CompletedStage>> load_completed(const std::string& stage_path) const;

  Status save_workflow_output(const std::string& name, const Artifact& artifact) const;

 private:
  std::filesystem::path dir_;
  std::function<std::string(std::string)> scrub_;
};

}  // namespace profagent::kernel

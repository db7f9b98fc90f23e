#include "profagent/kernel/run_store.hpp"

#include "profagent/fs.hpp"

namespace profagent::kernel {

namespace fs = std::filesystem;

Status RunStore::create() {
  std::error_code ec;
  if (fs::exists(dir_, ec)) {
    if (!fs::is_directory(dir_, ec)) return Status(ErrorCode::kIo, "output path exists and is not a directory: " + dir_.string());
    if (!fs::is_empty(dir_, ec))
      return Status(ErrorCode::kInvalidArgument,
                    "output directory is not empty: " + dir_.string() + " (use --resume to continue that run)");
  }
  for (const char* sub : {"", "logs", "stages", "outputs"}) {
    fs::create_directories(dir_ / sub, ec);
    if (ec) return Status(ErrorCode::kIo, "cannot create " + (dir_ / sub).string() + ": " + ec.message());
  }
  return Status::ok();
}

Status RunStore::open_existing() {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return Status(ErrorCode::kNotFound, "no run directory at " + dir_.string());
  if (!fs::exists(dir_ / "run.json", ec))
    return Status(ErrorCode::kNotFound, dir_.string() + " is not a profagent run directory (no run.json)");
  fs::create_directories(dir_ / "logs", ec);
  fs::create_directories(dir_ / "outputs", ec);
  return Status::ok();
}

Status RunStore::write_json(const std::string& relative_path, const Json& value) const {
  if (!scrub_) return write_json_atomic(dir_ / relative_path, value);
  return write_file_atomic(dir_ / relative_path, scrub_(value.dump(2)) + "\n");
}

Status RunStore::write_text(const std::string& relative_path, const std::string& text) const {
  return write_file_atomic(dir_ / relative_path, scrub_ ? scrub_(text) : text);
}

Result<Json> RunStore::read_json(const std::string& relative_path) const {
  return profagent::read_json(dir_ / relative_path);
}

Status RunStore::begin_stage(const std::string& stage_path) const {
  std::error_code ec;
  fs::path dir = stage_dir(stage_path);
  fs::remove_all(dir / "outputs", ec);
  fs::remove(dir / "stage.json", ec);
  fs::create_directories(dir / "outputs", ec);
  fs::create_directories(dir / "work", ec);
  if (ec) return Status(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  return Status::ok();
}

Status RunStore::save_output(const std::string& stage_path, const std::string& port, const Artifact& artifact) const {
  return save_artifact(artifact, stage_dir(stage_path) / "outputs" / port);
}

Status RunStore::complete_stage(const std::string& stage_path, const Json& record) const {
  return write_json(fs::relative(stage_dir(stage_path) / "stage.json", dir_).string(), record);
}

void RunStore::discard_stage_outputs(const std::string& stage_path) const {
  std::error_code ignored;
  fs::remove_all(stage_dir(stage_path) / "outputs", ignored);
  fs::remove(stage_dir(stage_path) / "stage.json", ignored);
}

Result<std::optional<CompletedStage>> RunStore::load_completed(const std::string& stage_path) const {
  fs::path dir = stage_dir(stage_path);
  std::error_code ec;
  if (!fs::exists(dir / "stage.json", ec)) return std::optional<CompletedStage>();
  auto record = profagent::read_json(dir / "stage.json");
  if (!record) return std::move(record).take_status();
  if (record->value("status", "") != "completed") return std::optional<CompletedStage>();
  CompletedStage completed;
  completed.seconds = record->value("seconds", 0.0);
  for (const auto& port : record->value("outputs", Json::array())) {
    std::string name = port.get<std::string>();
    auto artifact = load_artifact(dir / "outputs" / name);
    if (!artifact) return std::move(artifact).take_status().with_context("resuming stage " + stage_path);
    completed.outputs[name] = artifact.value();
  }
  return std::optional<CompletedStage>(std::move(completed));
}

Status RunStore::save_workflow_output(const std::string& name, const Artifact& artifact) const {
  std::error_code ignored;
  fs::remove_all(dir_ / "outputs" / name, ignored);  // a resumed run writes its outputs again
  return save_artifact(artifact, dir_ / "outputs" / name);
}

}  // namespace profagent::kernel

#include "profagent/kernel/blackboard.hpp"

#include <cstdio>

namespace profagent::kernel {

Status Blackboard::put(const std::string& key, ArtifactPtr artifact) {
  if (!artifact) return Status(ErrorCode::kInternal, "null artifact published as " + key);
  if (!entries_.emplace(key, std::move(artifact)).second)
    return Status(ErrorCode::kInternal, "artifact " + key + " published twice");
  return Status::ok();
}

ArtifactPtr Blackboard::get(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : it->second;
}

Scope::Scope(const Scope* parent, std::string loop_id, int iteration, std::set<std::string> stage_ids)
    : parent_(parent),
      iteration_(iteration),
      stage_ids_(std::move(stage_ids)) {
  stage_ids_.insert("loop");
  // Keys of a nested loop carry the enclosing iteration, so iterations never collide.
  std::string outer = parent ? parent->prefix_ : std::string();
  std::string outer_dir = parent ? parent->dir_prefix_ : std::string();
  std::string loop_key = loop_id;
  if (parent && parent->iteration_ > 0) loop_key += "@" + std::to_string(parent->iteration_);
  prefix_ = outer + loop_key + "/";
  char number[16];
  std::snprintf(number, sizeof(number), "%03d", iteration);
  dir_prefix_ = outer_dir + loop_id + "/" + number + "/";
}

std::string Scope::own_key(const std::string& stage, const std::string& port) const {
  std::string key = prefix_ + stage + "." + port;
  if (iteration_ > 0) key += "@" + std::to_string(iteration_);
  return key;
}

std::optional<std::string> Scope::key_of(const std::string& stage, const std::string& port) const {
  if (stage_ids_.count(stage)) return own_key(stage, port);
  if (parent_) return parent_->key_of(stage, port);
  return std::nullopt;
}

}  // namespace profagent::kernel

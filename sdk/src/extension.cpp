// The process-wide table of extension points (extension.hpp) and Registrar::add_extension.
#include "profagent/extension.hpp"

#include <mutex>
#include <set>
#include <utility>

#include "profagent/plugin.hpp"

PROFAGENT_ABI_NAMESPACE_BEGIN

namespace {

struct Entry {
  std::shared_ptr<const void> value;
  std::string origin;
};

struct Table {
  std::mutex mutex;
  std::map<std::pair<std::string, std::string>, Entry> entries;  // (point, name) → entry
  std::uint64_t generation = 0;
};

// Leaked on purpose: values point into plugin libraries, which are never unloaded, and readers may
// run during static destruction.
Table& table() {
  static auto* instance = new Table();
  return *instance;
}

std::string key_text(const std::string& point, const std::string& name) { return point + "/" + name; }

Status check_locked(const Table& t, const std::vector<Extension>& entries, const std::string& origin) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const Extension& entry : entries) {
    if (entry.point.empty() || entry.name.empty())
      return Status(ErrorCode::kPluginLoad, "an extension has an empty point or name (in " + origin + ")");
    const std::string key = key_text(entry.point, entry.name);
    if (!entry.value) return Status(ErrorCode::kPluginLoad, "extension '" + key + "' has no value (in " + origin + ")");
    if (!seen.insert({entry.point, entry.name}).second)
      return Status(ErrorCode::kPluginLoad, "duplicate extension '" + key + "' within " + origin);
    auto found = t.entries.find({entry.point, entry.name});
    if (found != t.entries.end() && found->second.origin != origin)
      return Status(ErrorCode::kPluginLoad,
                    "duplicate extension '" + key + "': " + origin + " and " + found->second.origin);
  }
  return Status::ok();
}

}  // namespace

void Registrar::add_extension(const std::string& point, const std::string& name, std::shared_ptr<const void> value) {
  extensions_.push_back(Extension{point, name, std::move(value)});
}

ExtensionTable extensions(const std::string& point) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  ExtensionTable out;
  for (auto it = t.entries.lower_bound({point, std::string()}); it != t.entries.end() && it->first.first == point; ++it)
    out.emplace(it->first.second, it->second.value);
  return out;
}

std::uint64_t extensions_generation() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.generation;
}

std::string extension_origin(const std::string& point, const std::string& name) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto found = t.entries.find({point, name});
  return found == t.entries.end() ? std::string() : found->second.origin;
}

Status check_extensions(const std::vector<Extension>& entries, const std::string& origin) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  return check_locked(t, entries, origin);
}

Status add_extensions(const std::vector<Extension>& entries, const std::string& origin) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  PROFAGENT_RETURN_IF_ERROR(check_locked(t, entries, origin));
  if (entries.empty()) return Status::ok();
  for (const Extension& entry : entries) t.entries[{entry.point, entry.name}] = Entry{entry.value, origin};
  ++t.generation;
  return Status::ok();
}

PROFAGENT_ABI_NAMESPACE_END

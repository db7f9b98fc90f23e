#include "profagent/kernel/plugin_manager.hpp"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include "profagent/log.hpp"
#include "profagent/plugin.hpp"

// The kernel includes no LibTorch header; the build passes the version of the LibTorch that the
// project's torch libraries were built with, so that plugins built against another are refused.
#ifndef PROFAGENT_KERNEL_TORCH_VERSION
#define PROFAGENT_KERNEL_TORCH_VERSION "none"
#endif

#ifndef PROFAGENT_PLUGIN_RELATIVE_DIR
#define PROFAGENT_PLUGIN_RELATIVE_DIR "lib/profagent/plugins"
#endif

namespace profagent::kernel {

namespace fs = std::filesystem;

namespace {

constexpr const char* kKernelFingerprint =
    "compiler=" PROFAGENT_COMPILER_ID ";cxxabi=" PROFAGENT_CXX_ABI ";torch=" PROFAGENT_KERNEL_TORCH_VERSION;

// Every library the kernel ever opened, leaked on purpose. Factories' std::function objects, the
// objects they make and the artifact loaders all point into a library's code, and they can outlive
// any PluginManager (the registry, artifacts held by a caller, static objects destroyed at exit).
// Unloading is therefore never safe during a run, and not at exit either; the OS reclaims it all.
// Refused libraries are kept too: their static initialisers have run and may have handed out
// pointers into their code (to spdlog, LibTorch's registries, ...).
std::mutex& libraries_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
void keep_forever(std::unique_ptr<boost::dll::shared_library> library) {
  static auto* libraries = new std::vector<std::unique_ptr<boost::dll::shared_library>>();
  std::lock_guard<std::mutex> lock(libraries_mutex());
  libraries->push_back(std::move(library));
}

// One name per file, so a file reached by two spellings or through a symlink is loaded once and
// messages name the real file.
std::string canonical_path(const std::string& path) {
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) return path;
  fs::path canonical = fs::weakly_canonical(absolute, ec);
  return ec ? absolute.lexically_normal().string() : canonical.string();
}

// dlsym on a handle also searches the libraries it depends on; a library that links a plugin would
// otherwise pass for that plugin (and register it a second time).
bool symbol_is_own(void* handle, const void* symbol, std::string* owner) {
  link_map* own = nullptr;
  link_map* found = nullptr;
  Dl_info info{};
  if (dlinfo(handle, RTLD_DI_LINKMAP, &own) != 0 ||
      dladdr1(symbol, &info, reinterpret_cast<void**>(&found), RTLD_DL_LINKMAP) == 0 || !own || !found)
    return true;  // cannot tell: let the descriptor checks decide
  if (own == found) return true;
  if (owner) *owner = info.dli_fname ? info.dli_fname : "another library";
  return false;
}

// Takes the record by reference (and empties it) so that callers may build `why` from its fields.
void refuse(Registry& registry, PluginRecord& record, std::string why) {
  log().warn("plugin {} refused: {}", record.path, why);
  record.loaded = false;
  record.refusal = std::move(why);
  registry.add_refused(std::move(record));
}

std::string text_or_empty(const char* text) { return text ? std::string(text) : std::string(); }

// Opens the library at record.path, checks its descriptor and registers it; exactly one record
// (loaded, refused or shadowed) is added to the registry. `shadowing(id)` names the file of a plugin
// of that id that takes precedence over this one (empty: none); such a plugin's register function is
// never called.
void load_into(Registry& registry, PluginRecord record,
               const std::function<std::string(const std::string&)>& shadowing) {
  auto library = std::make_unique<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  // rtld_now: a library with unresolved symbols fails here, with the linker's message, instead of
  // aborting the run later when the symbol is first used. rtld_local: plugins do not see each other.
  library->load(boost::dll::fs::path(record.path),
                boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now, ec);
  if (ec || !library->is_loaded()) {
    const char* dl_text = dlerror();  // Boost.DLL leaves dlopen's message in place on failure
    refuse(registry, record,
           "cannot load library " + record.path + ": " + (dl_text ? std::string(dl_text) : ec.message()));
    return;
  }
  void* handle = library->native();
  boost::dll::shared_library& lib = *library;
  keep_forever(std::move(library));

  std::string foreign_owner;
  if (!lib.has(PROFAGENT_DESCRIPTOR_SYMBOL) ||
      !symbol_is_own(handle, &lib.get<const profagent_plugin_descriptor_t>(PROFAGENT_DESCRIPTOR_SYMBOL),
                     &foreign_owner)) {
    std::string why =
        std::string("no entry point '") + PROFAGENT_DESCRIPTOR_SYMBOL + "': not a profagent plugin";
    if (!foreign_owner.empty()) why += " (the symbol found belongs to " + foreign_owner + ")";
    refuse(registry, record, why);
    return;
  }
  // A data symbol: reading it runs none of the plugin's code.
  const auto& descriptor = lib.get<const profagent_plugin_descriptor_t>(PROFAGENT_DESCRIPTOR_SYMBOL);

  // Only the two version fields are read before this check: they are the part of the layout every
  // ABI keeps, the rest may mean something else under another major.
  if (descriptor.abi_major != kAbiMajor || descriptor.abi_minor > kAbiMinor) {
    refuse(registry, record,
           "plugin ABI " + std::to_string(descriptor.abi_major) + "." + std::to_string(descriptor.abi_minor) +
               " is not compatible with the kernel's ABI " + std::to_string(kAbiMajor) + "." +
               std::to_string(kAbiMinor));
    return;
  }

  record.id = text_or_empty(descriptor.plugin_id);
  record.version = text_or_empty(descriptor.plugin_version);
  record.sdk_version = text_or_empty(descriptor.sdk_version);
  record.fingerprint = text_or_empty(descriptor.build_fingerprint);
  if (record.id.empty() || record.version.empty() || !descriptor.register_plugin) {
    std::string missing = record.id.empty()        ? "plugin id"
                          : record.version.empty() ? "plugin version"
                                                   : "register function";
    refuse(registry, record, "invalid plugin descriptor: the " + missing + " is missing");
    return;
  }

  // Before the fingerprint: an old installed copy under a fresh build is not an error either.
  std::string winner = shadowing ? shadowing(record.id) : std::string();
  if (!winner.empty()) {
    log().info("plugin '{}' in {} is shadowed by {} (earlier on the plugin search path)", record.id, record.path,
               winner);
    record.shadowed_by = winner;
    registry.add_shadowed(std::move(record));
    return;
  }

  std::string mismatch = fingerprint_mismatch(kKernelFingerprint, record.fingerprint);
  if (!mismatch.empty()) {
    refuse(registry, record,
           "plugin '" + record.id + "' was built with an incompatible toolchain: " + mismatch);
    return;
  }

  Registrar registrar;
  char error_buffer[1024] = {0};
  int rc = 1;
  try {
    rc = descriptor.register_plugin(&registrar, error_buffer, sizeof(error_buffer));
  } catch (const std::exception& e) {
    // PROFAGENT_PLUGIN catches inside the plugin; a hand-written register function may not.
    std::snprintf(error_buffer, sizeof(error_buffer), "register function threw: %s", e.what());
  } catch (...) {
    std::snprintf(error_buffer, sizeof(error_buffer), "register function threw a non-standard exception");
  }
  error_buffer[sizeof(error_buffer) - 1] = '\0';
  if (rc != 0) {
    std::string message = error_buffer[0] ? std::string(error_buffer) : "no message given";
    refuse(registry, record,
           "plugin '" + record.id + "' failed to register (code " + std::to_string(rc) + "): " + message);
    return;
  }

  // Extension entries are process-wide too: a (point, name) another file added refuses the plugin
  // (both files named) before anything of it is registered.
  Status extensions_ok = check_extensions(registrar.extensions(), record.path);
  if (!extensions_ok) {
    refuse(registry, record, extensions_ok.message());
    return;
  }
  PluginRecord accepted = record;
  for (const Extension& extension : registrar.extensions())
    accepted.roles.push_back("extension:" + extension.point + "/" + extension.name);
  Status added = registry.add_plugin(accepted, std::move(registrar.agents()), std::move(registrar.providers()));
  if (!added) {
    refuse(registry, record, added.message());
    return;
  }
  // Loaders are process-wide, so they are installed only once the plugin is known to be accepted.
  for (auto& [kind, loader] : registrar.artifact_loaders()) register_artifact_loader(kind, std::move(loader));
  // Checked above, and plugins are loaded one at a time: this only fails if another thread loaded a
  // clashing plugin in between.
  Status committed = add_extensions(registrar.extensions(), record.path);
  if (!committed) log().error("plugin {}: its extensions were not installed: {}", record.path, committed.message());
  log().debug("loaded plugin '{}' {} from {}", record.id, record.version, record.path);
}

// The plugin files a search path entry stands for, in a deterministic order.
std::vector<std::string> libraries_in(const std::string& entry) {
  std::error_code ec;
  fs::file_status status = fs::status(entry, ec);
  if (ec || !fs::exists(status)) {
    log().warn("plugin search path entry {} does not exist", entry);
    return {};
  }
  if (!fs::is_directory(status)) return {entry};  // a file named explicitly is loaded whatever its name

  std::vector<std::string> files;
  for (fs::directory_iterator it(entry, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    bool plugin_name =
        name.size() > 6 && name.compare(0, 3, "lib") == 0 && name.compare(name.size() - 3, 3, ".so") == 0;
    std::error_code file_ec;
    if (plugin_name && it->is_regular_file(file_ec)) files.push_back(it->path().string());
  }
  if (ec) log().warn("cannot list plugin directory {}: {}", entry, ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

// "key=value;key=value" with compiler, cxxabi and torch present, no empty value, no repeated key.
std::optional<std::map<std::string, std::string>> parse_fingerprint(const std::string& text) {
  std::map<std::string, std::string> fields;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;  // tolerates a trailing ';'
    std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) return std::nullopt;
    if (!fields.emplace(item.substr(0, eq), item.substr(eq + 1)).second) return std::nullopt;
  }
  for (const char* key : {"compiler", "cxxabi", "torch"})
    if (!fields.count(key)) return std::nullopt;
  return fields;
}

std::string leading_digits(const std::string& text, std::size_t from) {
  std::size_t end = from;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  return text.substr(from, end - from);
}

// "gcc-12.2" -> "gcc-12": objects from the same compiler major share layouts and libstdc++ symbols.
// A value without a version ("unknown") is compared whole.
std::string compiler_family_major(const std::string& compiler) {
  std::size_t dash = compiler.rfind('-');
  if (dash == std::string::npos) return compiler;
  std::string major = leading_digits(compiler, dash + 1);
  return major.empty() ? compiler : compiler.substr(0, dash) + "-" + major;
}

// "1.13.1" -> "1.13", "2.1.0+cu121" -> "2.1": LibTorch's C++ ABI changes between minors.
std::string torch_major_minor(const std::string& torch) {
  std::string major = leading_digits(torch, 0);
  if (major.empty() || major.size() >= torch.size() || torch[major.size()] != '.') return torch;
  std::string minor = leading_digits(torch, major.size() + 1);
  return minor.empty() ? torch : major + "." + minor;
}

}  // namespace

std::string fingerprint_mismatch(const std::string& kernel_fingerprint,
                                 const std::string& plugin_fingerprint) {
  std::string both =
      "plugin fingerprint '" + plugin_fingerprint + "', kernel fingerprint '" + kernel_fingerprint + "'";
  auto plugin = parse_fingerprint(plugin_fingerprint);
  auto kernel = parse_fingerprint(kernel_fingerprint);
  if (!plugin || !kernel)
    return std::string("malformed build fingerprint (expected 'compiler=...;cxxabi=...;torch=...'): ") + both;

  std::vector<std::string> differences;
  const std::string& pc = plugin->at("compiler");
  const std::string& kc = kernel->at("compiler");
  if (compiler_family_major(pc) != compiler_family_major(kc))
    differences.push_back("compiler " + pc + " vs the kernel's " + kc +
                          " (family and major version must match)");
  const std::string& pa = plugin->at("cxxabi");
  const std::string& ka = kernel->at("cxxabi");
  if (pa != ka) differences.push_back("C++ ABI " + pa + " vs the kernel's " + ka);
  const std::string& pt = plugin->at("torch");
  const std::string& kt = kernel->at("torch");
  // "none": built without LibTorch (a plugin that only exchanges JSON), nothing to compare.
  if (pt != "none" && kt != "none" && torch_major_minor(pt) != torch_major_minor(kt))
    differences.push_back("LibTorch " + pt + " vs the kernel's " + kt + " (major.minor must match)");
  if (differences.empty()) return {};

  std::string text;
  for (const auto& difference : differences) text += (text.empty() ? "" : "; ") + difference;
  return text + "; " + both;
}

struct PluginManager::Impl {
  // canonical path -> index of its record in registry_.plugins() (which only ever grows)
  std::map<std::string, std::size_t> seen;
  // plugin id -> the search path entry (index) and file it was loaded from
  std::map<std::string, std::pair<std::size_t, std::string>> loaded_ids;
};

PluginManager::PluginManager(Registry& registry) : registry_(registry), impl_(std::make_unique<Impl>()) {}

PluginManager::~PluginManager() = default;

void PluginManager::add_search_path(const std::string& path) {
  if (path.empty()) return;
  search_path_.push_back(path);
}

void PluginManager::load_all() {
  for (std::size_t entry = 0; entry < search_path_.size(); ++entry)
    for (const auto& file : libraries_in(search_path_[entry])) load(file, entry);
}

const PluginRecord& PluginManager::load_file(const std::string& path) { return load(path, kNoEntry); }

const PluginRecord& PluginManager::load(const std::string& path, std::size_t entry) {
  std::string canonical = canonical_path(path);
  auto seen = impl_->seen.find(canonical);
  if (seen != impl_->seen.end()) return registry_.plugins().at(seen->second);

  std::size_t index = registry_.plugins().size();
  PluginRecord record;
  record.path = canonical;
  // An id loaded from an earlier entry wins; within one entry (or for a file loaded by name) the
  // registry refuses the second copy as a duplicate.
  auto shadowing = [this, entry](const std::string& id) -> std::string {
    auto found = impl_->loaded_ids.find(id);
    if (entry == kNoEntry || found == impl_->loaded_ids.end() || found->second.first >= entry) return {};
    return found->second.second;
  };
  load_into(registry_, std::move(record), shadowing);
  impl_->seen.emplace(canonical, index);
  const PluginRecord& stored = registry_.plugins().at(index);
  if (stored.loaded) impl_->loaded_ids.emplace(stored.id, std::make_pair(entry, stored.path));
  return stored;
}

std::vector<std::string> default_plugin_dirs() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  fs::path prefix = exe.parent_path().parent_path();
  std::vector<std::string> dirs;
  // The install tree may use a multiarch libdir (lib/x86_64-linux-gnu); the build tree always uses
  // lib/profagent/plugins. Both are looked for so one binary works in either.
  for (const char* relative : {PROFAGENT_PLUGIN_RELATIVE_DIR, "lib/profagent/plugins"}) {
    fs::path dir = prefix / relative;
    if (!fs::is_directory(dir, ec)) continue;
    std::string canonical = canonical_path(dir.string());
    if (std::find(dirs.begin(), dirs.end(), canonical) == dirs.end()) dirs.push_back(canonical);
  }
  return dirs;
}

std::vector<std::string> plugin_path_from_env() {
  std::vector<std::string> entries;
  const char* value = std::getenv("PROFAGENT_PLUGIN_PATH");
  if (!value) return entries;
  std::string text(value);
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(':', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) entries.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return entries;
}

std::string kernel_build_fingerprint() { return kKernelFingerprint; }

}  // namespace profagent::kernel

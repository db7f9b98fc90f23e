#include "torchvision_source.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "child_process.hpp"
#include "profagent/fs.hpp"
#include "profagent/log.hpp"

#ifndef PROFAGENT_EXPORTER_SOURCE_PATH
#define PROFAGENT_EXPORTER_SOURCE_PATH ""
#endif

namespace profagent::agents {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "torchvision:";
constexpr const char* kExporterName = "export_torchvision.py";
// Keywords that would make torchvision download pretrained weights (mirrored in the exporter).
const std::set<std::string> kDownloadKeywords = {"weights", "weights_backbone", "pretrained",
                                                 "pretrained_backbone"};

bool is_identifier(const std::string& text) {
  if (text.empty() || std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

bool is_integer(const std::string& text) {
  std::size_t i = (text[0] == '+' || text[0] == '-') ? 1 : 0;
  return i < text.size() && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i), text.end(),
                                        [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// A query value as the Python literal it stands for: the builders take ints, floats, bools and None
// (num_classes=10, dropout=0.1, aux_logits=false, norm_layer=None), and anything else is a string.
Json typed_value(const std::string& text) {
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  if (text == "None" || text == "none" || text == "null") return nullptr;
  if (is_integer(text)) {
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (errno == 0 && *end == '\0') return static_cast<std::int64_t>(value);
    return text;
  }
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() && *end == '\0' && std::isfinite(value) &&
      text.find_first_of("0123456789") != std::string::npos)
    return value;
  return text;
}

std::string spelled(const Json& value) {
  if (value.is_null()) return "None";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();  // ints, floats (shortest round-trip form) and bools
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text;
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? "x" : "") + std::to_string(shape[i]);
  return text;
}

Result<std::vector<std::int64_t>> parse_shape(const std::string& text) {
  std::vector<std::int64_t> shape;
  for (const std::string& part : split(text, 'x')) {
    auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
    if (part.empty() || part.size() > 9 || !std::all_of(part.begin(), part.end(), digit) ||
        std::stoll(part) <= 0)
      return Status(ErrorCode::kInvalidArgument, "");
    shape.push_back(std::stoll(part));
  }
  return shape;
}

std::string last_error_line(const std::string& err_tail) {
  std::string found;
  for (const std::string& line : split(err_tail, '\n'))
    if (line.rfind("error: ", 0) == 0) found = line.substr(7);
  return found;
}

std::string indented(const std::string& text) {
  std::string out;
  for (const std::string& line : split(text, '\n'))
    if (!line.empty()) out += "\n  " + line;
  return out.empty() ? " (no output on stderr)" : ":" + out;
}

}  // namespace

std::string TorchvisionRequest::canonical() const {
  std::map<std::string, std::string> pairs;
  for (auto it = kwargs.begin(); it != kwargs.end(); ++it) pairs[it.key()] = spelled(it.value());
  pairs["export"] = export_mode;
  if (!input_shape.empty()) pairs["input_shape"] = shape_text(input_shape);
  std::string text = kPrefix + name;
  char separator = '?';
  for (const auto& [key, value] : pairs) {
    text += separator + key + "=" + value;
    separator = '&';
  }
  return text;
}

std::string TorchvisionRequest::cache_file_name() const {
  // A file without metadata is another file: tests export one beside the normal one.
  std::string key = canonical() + (metadata ? "" : "\nno-meta");
  return name + "-" + export_mode + "-" + sha256_hex(key).substr(0, 12) + ".pt";
}

Result<TorchvisionRequest> parse_torchvision_source(const std::string& source) {
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "bad torchvision source '" + source + "': " + why);
  };
  if (source.rfind(kPrefix, 0) != 0) return bad("it does not start with 'torchvision:'");
  std::string rest = source.substr(std::string(kPrefix).size());
  std::size_t question = rest.find('?');
  TorchvisionRequest request;
  request.name = rest.substr(0, question);
  if (request.name.empty()) return bad("no model name (e.g. torchvision:resnet50)");
  if (!is_identifier(request.name))
    return bad("the model name '" + request.name +
               "' is not a torchvision builder name (letters, digits and '_', e.g. vit_b_16)");
  if (question == std::string::npos) return request;

  std::string query = rest.substr(question + 1);
  if (query.empty()) return bad("nothing after '?' (expected key=value pairs joined by '&')");
  std::set<std::string> seen;
  for (const std::string& item : split(query, '&')) {
    if (item.empty()) return bad("an empty key=value pair (a doubled or trailing '&')");
    std::size_t equals = item.find('=');
    if (equals == std::string::npos) return bad("'" + item + "' is not key=value");
    std::string key = item.substr(0, equals);
    std::string value = item.substr(equals + 1);
    if (!is_identifier(key)) return bad("'" + key + "' is not a keyword name");
    if (value.empty()) return bad("no value for '" + key + "'");
    if (!seen.insert(key).second) return bad("'" + key + "' is given twice");
    if (key == "export") {
      if (value != "script" && value != "trace")
        return bad("export must be script or trace, not '" + value + "'");
      request.export_mode = value;
    } else if (key == "input_shape") {
      auto shape = parse_shape(value);
      if (!shape)
        return bad("input_shape '" + value + "' is not positive integers joined by 'x' (1x3x224x224)");
      request.input_shape = std::move(shape).value();
    } else if (kDownloadKeywords.count(key) != 0) {
      return Status(ErrorCode::kInvalidArgument,
                    "'" + key + "' is refused in '" + source +
                        "': pretrained weights cannot be downloaded by profagent; torchvision:" +
                        request.name + " is built with random weights (weights=None)");
    } else {
      request.kwargs[key] = typed_value(value);
    }
  }
  return request;
}

fs::path default_python() {
  const char* env = std::getenv("PROFAGENT_PYTHON");
  if (env != nullptr && *env != '\0') return env;
  // Debian's interpreter, the one python3-torch and python3-torchvision install into; a `python3`
  // found on PATH (pyenv, a venv) usually lacks them.
  return "/usr/bin/python3";
}

fs::path default_torchvision_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && *xdg != '\0' && fs::path(xdg).is_absolute())
    return fs::path(xdg) / "profagent" / "torchvision";
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return fs::path(home) / ".cache" / "profagent" / "torchvision";
  return fs::temp_directory_path() / ("profagent-cache-" + std::to_string(::getuid())) / "torchvision";
}

Result<fs::path> find_exporter() {
  std::vector<fs::path> candidates;
  const char* env = std::getenv("PROFAGENT_TORCHVISION_EXPORTER");
  if (env != nullptr && *env != '\0') {
    if (fs::is_regular_file(env)) return fs::path(env);
    return Status(ErrorCode::kNotFound,
                  std::string("PROFAGENT_TORCHVISION_EXPORTER names ") + env + ", which is not a file");
  }
  // The code is in the plugin (lib/profagent/plugins/) or a program (bin/); an install puts the
  // script in share/profagent/tools/ under the same prefix.
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&find_exporter), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path dir = fs::canonical(info.dli_fname, ec).parent_path();
    for (int up = 0; up < 4 && !ec && !dir.empty(); ++up, dir = dir.parent_path())
      candidates.push_back(dir / "share" / "profagent" / "tools" / kExporterName);
  }
  if (*PROFAGENT_EXPORTER_SOURCE_PATH != '\0') candidates.emplace_back(PROFAGENT_EXPORTER_SOURCE_PATH);
  std::string looked;
  for (const fs::path& candidate : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  }
  return Status(ErrorCode::kNotFound, std::string("cannot find the torchvision exporter ") + kExporterName +
                                          " (looked in " + looked + "); set PROFAGENT_TORCHVISION_EXPORTER");
}

Result<TorchvisionExport> export_torchvision(const TorchvisionRequest& request, const std::string& source,
                                             const TorchvisionOptions& options) {
  TorchvisionExport result;
  result.python = options.python.empty() ? default_python() : options.python;
  fs::path cache_dir = options.cache_dir.empty() ? default_torchvision_cache_dir() : options.cache_dir;
  result.path = cache_dir / request.cache_file_name();
  std::error_code ec;
  if (fs::is_regular_file(result.path, ec)) {
    result.cached = true;
    log().info("{} ({}): cached {}", source, request.export_mode, result.path.string());
    return result;
  }

  fs::path exporter = options.exporter;
  if (exporter.empty()) {
    auto found = find_exporter();
    if (!found) return std::move(found).take_status();
    exporter = std::move(found).value();
  }
  fs::create_directories(cache_dir, ec);
  if (ec)
    return Status(ErrorCode::kIo, "cannot create the torchvision cache directory " + cache_dir.string() +
                                      ": " + ec.message());

  std::vector<std::string> argv = {result.python.string(),
                                   exporter.string(),
                                   "--name",
                                   request.name,
                                   "--kwargs",
                                   request.kwargs.dump(),
                                   "--export",
                                   request.export_mode,
                                   "--source",
                                   request.canonical(),
                                   "--output",
                                   result.path.string()};
  if (!request.input_shape.empty()) {
    argv.push_back("--input-shape");
    argv.push_back(shape_text(request.input_shape));
  }
  if (!request.metadata) argv.push_back("--no-meta");

  ChildOptions child;
  // Set here so the exporter need not re-exec itself to get reproducible bytes.
  child.env["PYTHONHASHSEED"] = "0";
  child.on_err_line = [](const std::string& line) { log().debug("export_torchvision: {}", line); };
  log().info("exporting {} ({}) with {} ...", source, request.export_mode, result.python.string());
  auto started = std::chrono::steady_clock::now();
  auto ran = run_child(argv, child);
  if (!ran) {
    Status status = std::move(ran).take_status();
    return Status(status.code(), "cannot run the Python interpreter " + result.python.string() +
                                     " to export " + source + " (" + status.message() +
                                     "); set the acquisition's `python` key or PROFAGENT_PYTHON to a Python "
                                     "with torch and torchvision");
  }
  const ChildResult& child_result = ran.value();
  result.export_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  if (child_result.exit_code != 0) {
    // What a killed exporter may leave: its private temp directory (see the script's save_atomically).
    fs::remove_all(
        cache_dir / ("." + result.path.filename().string() + ".tmp-" + std::to_string(child_result.pid)), ec);
    std::string reason = last_error_line(child_result.err_tail);
    if (child_result.exit_code == 2 && !reason.empty()) return Status(ErrorCode::kInvalidArgument, reason);
    if (child_result.exit_code == 3 && !reason.empty()) return Status(ErrorCode::kUnsupported, reason);
    std::string how = child_result.signal != 0 ? "killed by signal " + std::to_string(child_result.signal)
                                               : "exit code " + std::to_string(child_result.exit_code);
    return Status(ErrorCode::kRuntime, "exporting " + source + " (" + request.export_mode + ") with " +
                                           result.python.string() + " " + exporter.string() + " failed (" +
                                           how + ")" + indented(child_result.err_tail));
  }
  if (!fs::is_regular_file(result.path, ec))
    return Status(ErrorCode::kRuntime, "the torchvision exporter reported success for " + source +
                                           " but wrote no file at " + result.path.string());
  log().info("exported {} ({}) in {:.1f} s to {}", source, request.export_mode, result.export_seconds,
             result.path.string());
  return result;
}

}  // namespace profagent::agents

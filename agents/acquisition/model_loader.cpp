#include "model_loader.hpp"

#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <system_error>
#include <vector>

#include "profagent/fs.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/torch/quantized_engine.hpp"

namespace profagent::agents {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSupportedSchemes = "file paths, torchvision:NAME";

bool is_scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

// The file's first bytes, to tell a truncated TorchScript archive (a ZIP) from a file that never was one.
enum class FileMagic { kZip, kPickle, kOther };

FileMagic read_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char bytes[4] = {0, 0, 0, 0};
  in.read(bytes, sizeof(bytes));
  if (in.gcount() == 4 && std::memcmp(bytes, "PK\x03\x04", 4) == 0) return FileMagic::kZip;
  // torch.save() before 1.6 (or with _use_new_zipfile_serialization=False) writes a bare pickle.
  if (in.gcount() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80 && bytes[1] >= 2 && bytes[1] <= 5)
    return FileMagic::kPickle;
  return FileMagic::kOther;
}

Status load_failure(const std::string& shown, const fs::path& path, const std::string& reason) {
  switch (read_magic(path)) {
    case FileMagic::kZip:
      if (reason.find("constants.pkl") != std::string::npos)
        return Status(ErrorCode::kParseError,
                      shown + " is a ZIP archive but not a TorchScript module (" + reason +
                          "); a torch.save() checkpoint holds weights only: export the model with "
                          "torch.jit.script or torch.jit.trace and save that");
      if (reason.find("central directory") != std::string::npos)
        return Status(ErrorCode::kParseError,
                      shown + " is a truncated or damaged TorchScript archive (" + reason + ")");
      return Status(ErrorCode::kParseError,
                    "cannot load the TorchScript archive " + shown + " (" + reason + ")");
    case FileMagic::kPickle:
      return Status(ErrorCode::kParseError,
                    shown + " is not a TorchScript archive (" + reason +
                        "); it looks like a legacy torch.save() pickle: export the model with "
                        "torch.jit.script or torch.jit.trace and save that");
    case FileMagic::kOther:
      break;
  }
  return Status(ErrorCode::kParseError, shown + " is not a TorchScript archive (" + reason + ")");
}

// Checks what can be checked before LibTorch sees the file, so each common mistake gets its own message.
Status check_model_file(const std::string& shown, const fs::path& path) {
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    std::string where =
        fs::path(shown).is_relative() ? " (relative to " + fs::current_path(ec).string() + ")" : "";
    return Status(ErrorCode::kNotFound, "model file not found: " + shown + where);
  }
  if (ec) return Status(ErrorCode::kIo, "cannot access model file " + shown + ": " + ec.message());
  if (status.type() == fs::file_type::directory)
    return Status(ErrorCode::kInvalidArgument,
                  shown + " is a directory, not a TorchScript model file (name the .pt file inside it)");
  if (status.type() != fs::file_type::regular)
    return Status(ErrorCode::kInvalidArgument,
                  shown + " is not a regular file, so not a TorchScript model file");
  std::ifstream probe(path, std::ios::binary);
  if (!probe) return Status(ErrorCode::kIo, "cannot read model file " + shown + ": " + std::strerror(errno));
  if (fs::file_size(path, ec) == 0 && !ec)
    return Status(ErrorCode::kParseError, shown + " is not a TorchScript archive (the file is empty)");
  return Status::ok();
}

}  // namespace

std::string source_scheme(const std::string& source) {
  std::size_t colon = source.find(':');
  // One letter is a Windows drive ("C:\models\m.pt"); a '/' first means a path like "runs/a:b.pt".
  if (colon == std::string::npos || colon < 2) return "";
  if (!std::isalpha(static_cast<unsigned char>(source[0]))) return "";
  for (std::size_t i = 1; i < colon; ++i)
    if (!is_scheme_char(source[i])) return "";
  return source.substr(0, colon);
}

namespace {

Status check_device(const std::string& source, const LoadOptions& options) {
  if (options.device != "cpu" && options.device != "cuda")
    return Status(ErrorCode::kInvalidArgument,
                  "unknown device '" + options.device + "' (expected cpu or cuda)");
  if (options.device == "cuda" && !torch::cuda::is_available())
    return Status(
        ErrorCode::kUnsupported,
        "device 'cuda' was requested for " + source +
            " but CUDA is not available (LibTorch built without CUDA, or no GPU visible); use device: cpu");
  return Status::ok();
}

// Loads the TorchScript file at `path` (`shown` is how the user named it) with the common provenance;
// `extra_files` receives the named archive entries that exist.
Result<std::shared_ptr<const ModelArtifact>> load_file(const std::string& shown, const fs::path& path,
                                                       const LoadOptions& options, Json extra_provenance,
                                                       torch::jit::ExtraFilesMap* extra_files) {
  PROFAGENT_RETURN_IF_ERROR(check_model_file(shown, path));

  torch::jit::ExtraFilesMap own;
  if (extra_files == nullptr) extra_files = &own;
  (*extra_files)[kModelMetadataFile];  // always read the metadata entry, if the file has one

  // A quantized model's packed weights re-pack while the file loads, with the engine selected then:
  // the engine its metadata names is selected first and put back after.
  // An unreadable archive is left to torch::jit::load, whose error says more.
  auto stored_meta = torch_tk::read_stored_metadata(path);
  torch_tk::QuantizedEngineGuard engine(stored_meta ? torch_tk::engine_of_metadata(stored_meta.value()) : std::string());
  if (!engine.ok()) return Status(engine.error()).with_context("loading model " + shown);
  auto started = std::chrono::steady_clock::now();
  std::shared_ptr<torch::jit::Module> module;
  try {
    // Loading straight onto the device also maps a model saved on a GPU to a CPU-only machine.
    c10::Device device(options.device == "cuda" ? c10::kCUDA : c10::kCPU);
    module = std::make_shared<torch::jit::Module>(torch::jit::load(path.string(), device, *extra_files));
    if (options.eval) module->eval();
  } catch (const std::exception& e) {
    return load_failure(shown, path, torch_tk::torch_error_reason(e));
  }
  double loaded_in_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();

  auto digest = sha256_file(path);
  if (!digest) return std::move(digest).take_status().with_context("hashing model file " + shown);
  std::error_code ec;
  std::uintmax_t size = fs::file_size(path, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot stat model file " + shown + ": " + ec.message());

  std::vector<std::string> methods;
  for (const auto& method : module->get_methods()) methods.push_back(method.name());
  std::sort(methods.begin(), methods.end());

  Json provenance = {
      {"source", shown},      {"path", path.string()},   {"sha256", digest.value()},
      {"size_bytes", size},   {"format", "torchscript"}, {"device", options.device},
      {"eval", options.eval}, {"methods", methods},      {"loaded_in_ms", loaded_in_ms},
  };
  provenance.update(extra_provenance);
  const std::string& stored = (*extra_files)[kModelMetadataFile];
  Json metadata = stored.empty() ? Json() : Json::parse(stored, nullptr, false);
  if (metadata.is_discarded() || !metadata.is_object()) metadata = Json();
  return std::shared_ptr<const ModelArtifact>(
      std::make_shared<ModelArtifact>(std::move(module), std::move(provenance), std::move(metadata)));
}

Result<std::shared_ptr<const ModelArtifact>> load_torchvision(const std::string& source,
                                                              const LoadOptions& options) {
  auto request = parse_torchvision_source(source);
  if (!request) return std::move(request).take_status();
  PROFAGENT_RETURN_IF_ERROR(check_device(source, options));
  auto exported = export_torchvision(request.value(), source, options.torchvision);
  if (!exported) return std::move(exported).take_status();
  const TorchvisionExport& file = exported.value();

  Json provenance = {
      {"torchvision_name", request->name},
      {"export", request->export_mode},
      {"kwargs", request->kwargs},
      {"cache_path", file.path.string()},
      {"cached", file.cached},
      {"export_seconds", file.export_seconds},
      {"canonical_source", request->canonical()},
      {"python", file.python.string()},
  };
  if (!request->input_shape.empty()) provenance["input_shape"] = request->input_shape;
  torch::jit::ExtraFilesMap extra{{"profagent_meta.json", ""}};
  auto loaded = load_file(source, file.path, options, provenance, &extra);
  if (!loaded) return std::move(loaded).take_status().with_context("loading the export of " + source);
  // The version of the torchvision that wrote the file (a cached file may predate an upgrade).
  if (!extra["profagent_meta.json"].empty()) {
    Json meta = Json::parse(extra["profagent_meta.json"], nullptr, false);
    if (meta.is_object() && meta.contains("torchvision_version")) {
      Json summary = loaded.value()->summary();
      summary.erase("params");
      summary["torchvision_version"] = meta["torchvision_version"];
      return std::shared_ptr<const ModelArtifact>(
          std::make_shared<ModelArtifact>(loaded.value()->module_ptr(), std::move(summary),
                                          loaded.value()->metadata()));
    }
  }
  return loaded;
}

}  // namespace

Result<std::shared_ptr<const ModelArtifact>> load_model(const std::string& source,
                                                        const LoadOptions& options) {
  if (source.empty()) return Status(ErrorCode::kInvalidArgument, "the model source is empty");
  std::string scheme = source_scheme(source);
  std::error_code ec;
  // An existing file whose name merely looks like "name:rest" is still a file.
  bool is_file = !scheme.empty() && fs::exists(source, ec);
  if (scheme == "torchvision" && !is_file) return load_torchvision(source, options);
  if (!scheme.empty() && !is_file)
    return Status(ErrorCode::kUnsupported, "unsupported source scheme '" + scheme + "' in '" + source +
                                               "' (supported: " + kSupportedSchemes + ")");
  PROFAGENT_RETURN_IF_ERROR(check_device(source, options));

  fs::path path = fs::absolute(fs::path(source), ec).lexically_normal();
  if (ec) return Status(ErrorCode::kIo, "cannot resolve the model path " + source + ": " + ec.message());
  return load_file(source, path, options, Json::object(), nullptr);
}

}  // namespace profagent::agents

#pragma once
// Loading a model for the acquisition stage, as plain library code: the agent is a thin adapter
// around load_model(), and tests reach it without the plugin boundary. No LibTorch in this header.
#include <memory>
#include <string>

#include "profagent/torch/model_artifact.hpp"
#include "profagent/status.hpp"
#include "torchvision_source.hpp"

namespace profagent::agents {

struct LoadOptions {
  std::string device = "cpu";      // "cpu" or "cuda"
  bool eval = true;                // switch the module to inference mode (BatchNorm, Dropout)
  TorchvisionOptions torchvision;  // python, cache and exporter for `torchvision:` sources
};

// Loads the model named by `source` and records where it came from. A source is a path to a
// TorchScript file (relative paths resolve against the current directory) or
// `torchvision:NAME?key=value&...` (torchvision_source.hpp: exported once, then read from the cache);
// any other `scheme:` prefix is refused as unsupported.
//
// The artifact's summary holds: source, path (absolute), sha256, size_bytes, format ("torchscript"),
// device, eval, methods, loaded_in_ms, params (added by ModelArtifact); for torchvision also
// torchvision_name, export, kwargs, input_shape (when given), cache_path, cached, export_seconds,
// python and, when the file records it, torchvision_version.
//
// Errors name the path and the reason: kNotFound (missing file), kInvalidArgument (a directory, an
// unknown device, a bad torchvision source), kUnsupported (an unknown scheme, CUDA not available), kIo
// (unreadable), kParseError (not a TorchScript archive, truncated or damaged archive), kRuntime (a
// failed torchvision export).
Result<std::shared_ptr<const ModelArtifact>> load_model(const std::string& source,
                                                        const LoadOptions& options);

// The scheme of a source ("torchvision" for "torchvision:resnet18"), or empty for a file path.
// A one-letter prefix is a drive letter, and a path with a '/' before its first ':' is a path.
std::string source_scheme(const std::string& source);

}  // namespace profagent::agents

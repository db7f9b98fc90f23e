#pragma once
// The `torchvision:NAME?key=value&...` source: the real torchvision class exported to TorchScript by
// the shipped helper tools/export_torchvision.py (run with a Python that has torch and torchvision),
// cached on disk so that the export (seconds to a minute) happens once per request. No LibTorch here.
//
//   torchvision:resnet50                         scripted, input 1x3x224x224 recorded in the file
//   torchvision:vit_b_16?num_classes=10          builder keywords: ints, floats, bools, None, strings
//   torchvision:resnet18?export=trace            traced with a seeded 1x3x224x224 example
//   torchvision:resnet18?export=trace&input_shape=1x3x160x160
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::agents {

struct TorchvisionRequest {
  std::string name;                       // a torchvision.models builder, e.g. "resnet50"
  Json kwargs = Json::object();           // its keyword arguments, typed (no export/input_shape)
  std::string export_mode = "script";     // "script" or "trace"
  std::vector<std::int64_t> input_shape;  // empty: the exporter's default (1x3x224x224; ViT: image_size)
  bool metadata = true;                   // store profagent_meta.json in the file (off only in tests)

  // "torchvision:NAME?k=v&..." with every key sorted, export always present and values in one
  // spelling (num_classes=010 and num_classes=10 are the same request): the cache key.
  std::string canonical() const;
  // "<name>-<export>-<first 12 hex of sha256(canonical())>.pt"
  std::string cache_file_name() const;
};

// Parses the text of a `torchvision:` source. Errors (kInvalidArgument) name the source and what
// is wrong: a name that is not an identifier, a malformed or repeated key=value, a bad export mode
// or input_shape, or a keyword that would download pretrained weights (weights, pretrained, ...).
Result<TorchvisionRequest> parse_torchvision_source(const std::string& source);

struct TorchvisionOptions {
  std::filesystem::path python;     // empty: $PROFAGENT_PYTHON, else /usr/bin/python3
  std::filesystem::path cache_dir;  // empty: ${XDG_CACHE_HOME:-$HOME/.cache}/profagent/torchvision
  std::filesystem::path exporter;   // empty: the shipped export_torchvision.py (see find_exporter)
};

struct TorchvisionExport {
  std::filesystem::path path;   // the TorchScript file in the cache
  bool cached = false;          // true when an earlier export was reused
  double export_seconds = 0.0;  // time spent in the exporter (0 when cached)
  std::filesystem::path python;
};

// Returns the cached file for `request`, exporting it first when absent. The exporter writes a temp
// file and renames it, and a failed or killed export's temp files are removed, so the cache only ever
// holds complete files. Errors: kInvalidArgument for a request torchvision refuses (unknown model,
// with close matches; unknown keyword), kNotFound for a missing Python or exporter, kUnsupported for
// a Python without torch/torchvision, kRuntime for a failed export (with the last stderr lines), kIo.
Result<TorchvisionExport> export_torchvision(const TorchvisionRequest& request, const std::string& source,
                                             const TorchvisionOptions& options);

std::filesystem::path default_python();
std::filesystem::path default_torchvision_cache_dir();
// The exporter script: $PROFAGENT_TORCHVISION_EXPORTER, else share/profagent/tools/ next to the
// installed binaries (found from this library's own location), else the source tree it was built from.
Result<std::filesystem::path> find_exporter();

}  // namespace profagent::agents

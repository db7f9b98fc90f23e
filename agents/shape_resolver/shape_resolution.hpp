#pragma once
// Finding a model's input shape(s), as plain library code: the shape_resolver agent is a thin adapter
// around resolve_input_shapes(), and tests reach it without the plugin boundary. No LibTorch here.
//
// Order: the shapes the workflow gives → the shapes stored in the model file (`profagent_meta.json`,
// written by tools/export_torchvision.py and examples/models/make_demo_model.py) → probing a short
// list of candidates, one forward each, the first that runs wins.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/torch/model_artifact.hpp"
#include "profagent/status.hpp"

namespace profagent::agents {

using Shape = std::vector<std::int64_t>;

struct ShapeResolutionOptions {
  std::vector<Shape> input_shapes;   // from the workflow, one per forward() input; empty: not given
  std::optional<std::string> dtype;  // float32, float16 or bfloat16; unset: the file's, else float32
  std::vector<Shape> candidates;     // replaces the default probe list when not empty
  bool verify = true;                // run one forward with given or stored shapes
  bool use_metadata = true;          // read the shapes stored in the model file
  std::function<bool()> cancelled;   // checked between probes (SIGINT during a long probe list)
};

struct ShapeResolution {
  std::vector<Shape> input_shapes;
  std::string dtype;
  std::string source;  // "workflow", "metadata" or "probe"
  // Every forward run, in order: {"shapes": [[...]], "from": "workflow|metadata|probe", "ok": bool,
  // "ms": wall time, "error": torch's reason on one line (when not ok)}.
  Json tried = Json::array();
  Json output_shapes = Json();  // the shapes of the tensors forward() returned, when it ran

  // {"inputs": [{"shape": [...], "dtype": "..."}], "source": ..., "tried": [...], "outputs": [{"shape",
  // "dtype"}] (the tensors forward() returned; absent when no forward ran)}
  Json to_json() const;
};

// The probe list when the options name none: batch 1, 1 or 3 channels, sizes 28..299, ordered so an
// ImageNet-sized model (3x224) and the small ones (1x28 MNIST, 3x32 CIFAR) are found in a few tries.
const std::vector<Shape>& default_probe_candidates();

// Parses a shape list as a workflow writes it: [1, 3, 224, 224] (one input) or [[1, 3, 224, 224],
// [1, 16]] (one per input). Dimensions must be positive integers. `what` names it in errors.
Result<std::vector<Shape>> parse_shape_list(const Json& value, const std::string& what);

// The `profagent_meta.json` entry of the TorchScript archive at `path`: the parsed object, null when
// the file has none, or an error when the file cannot be read or the entry is not a JSON object.
Result<Json> read_model_metadata(const std::string& path);

// Resolves the input shapes of `model` (its summary's "path" is where metadata is read from).
// The model's module is not changed: a model still in training mode is probed through an eval-mode
// clone. Errors: kInvalidArgument (bad options, or workflow shapes that don't run, with torch's
// reason), kValidation (no candidate runs: every shape tried and the first failure's reason),
// kUnsupported (probing a forward() that takes several tensors or a non-tensor).
Result<ShapeResolution> resolve_input_shapes(const ModelArtifact& model,
                                             const ShapeResolutionOptions& options);

std::string shape_to_string(const Shape& shape);  // "1x3x224x224"

}  // namespace profagent::agents

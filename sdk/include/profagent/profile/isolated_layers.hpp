#pragma once
// Layers timed alone: something independent of the dynamic profile to check its attribution against.
// A layer's own forward (the submodule's `forward` method, a graph executor of its own) is timed on the
// very input it received in a forward of the whole model, with nothing else running in between. Where
// the profile charges a layer ~its isolated time, time landed on the right layer; a profile that shifts
// time between layers (an op charged to its neighbour) or loses it disagrees.
//
// The inputs are captured in one forward of a copy of the model (sharing its tensors) whose executor
// does not inline submodule calls, through a thread-local RecordFunction callback on the interpreter's
// frames (scope TORCHSCRIPT_FUNCTION: a method's first argument is its module object). The model's
// module hierarchy must therefore still be there: a layer the forward never calls through its own
// method (an inlined model) has no captured input, which is an error naming the layer.
#include <torch/script.h>

#include <string>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::torch_tk {

struct IsolatedTimingOptions {
  int warmup = 3;    // untimed calls of each layer first (its executor profiles and optimizes)
  int repeats = 20;  // timed calls of each layer
  int threads = 0;   // intra-op threads while timing (every pool, restored after); 0: unchanged
};

struct IsolatedLayerTime {
  std::string name;  // module path, as the dynamic profile names it
  double p50_ms = 0, min_ms = 0;
  std::vector<double> samples_ms;
};

// The named layers (module paths, e.g. "layer4.0.conv2") timed alone, in the order given, each on the
// input it received in a forward of `module` on `inputs` (eval mode, no grad). Errors name the layer:
// a path that is no submodule (kInvalidArgument), a layer the forward did not call through its own
// method or a build where RecordFunction gives no inputs (kUnsupported), a failing forward (kRuntime).
Result<std::vector<IsolatedLayerTime>> time_layers_alone(const torch::jit::Module& module,
                                                         const std::vector<torch::jit::IValue>& inputs,
                                                         const std::vector<std::string>& layers,
                                                         const IsolatedTimingOptions& options = {});

}  // namespace profagent::torch_tk

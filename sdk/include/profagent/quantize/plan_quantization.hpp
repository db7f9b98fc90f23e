#pragma once
// The `quantization` section of a `plan` artifact (docs/quantization.md, "The plan"), shaped like its
// `pruning` section:
//   {"quantization": {"default": "int8_dynamic",                       optional; else the stage's `scheme`
//                     "layers": {"heads.head": "fp16",                  module path → scheme
//                                "encoder.layers.encoder_layer_0.mlp.0": {"scheme": "none", "reason": "..."}},
//                     "ignored_layers": ["conv_proj"]}}                 kept fp32
// No LibTorch.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/quantize/scheme_names.hpp"
#include "profagent/status.hpp"

namespace profagent::quantize {

struct QuantizationPlan {
  std::optional<Scheme> default_scheme;
  std::map<std::string, Scheme> layers;
  std::map<std::string, std::string> reasons;  // layer → the plan's reason, where it gave one
  std::vector<std::string> ignored_layers;
  Json to_json() const;
};

// The plan's "quantization" section, or nullopt when it has none. Errors (kValidation) name the
// entry: an unknown key, an unknown scheme ("did you mean"), a layer that is neither a name nor
// {scheme, reason}.
Result<std::optional<QuantizationPlan>> parse_quantization_plan(const Json& plan);

// The scheme of every layer in `layers` (the model's quantizable layers): ignored → none, named →
// its scheme, else the plan's default, else `fallback`. A plan layer (named or ignored) that is not
// one of `layers` is kNotFound naming it and `model_name`, with "did you mean" from `layers`.
Result<std::map<std::string, Scheme>> resolve_layer_schemes(const QuantizationPlan& plan,
                                                            const std::vector<std::string>& layers,
                                                            Scheme fallback, const std::string& model_name);

}  // namespace profagent::quantize

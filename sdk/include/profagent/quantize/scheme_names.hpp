#pragma once
// The quantization schemes a layer can get (docs/quantization.md), by the names plans and workflows
// use. No LibTorch.
#include <string>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::quantize {

enum class Scheme {
  kNone,            // fp32, as it was
  kInt8Dynamic,     // int8 weights packed once (per-channel symmetric), activations quantized at run time
  kInt8WeightOnly,  // int8 weights (per-channel symmetric) dequantized to fp32 at run time
  kFp16,            // weights stored fp16, computed in fp32
  kBf16,            // weights stored bf16, computed in bf16 (inputs cast, outputs cast back to fp32)
  kInt8Static,      // static int8 (calibrated activations): the static engine (issue 11 item 3)
};

std::string scheme_name(Scheme scheme);
const std::vector<std::string>& scheme_names();
// kValidation for an unknown name: "unknown quantization scheme 'int8_dynamc' (known: ...); did you
// mean 'int8_dynamic'?"; `where` prefixes the message (e.g. "plan: quantization.layers['fc']").
Result<Scheme> parse_scheme(const std::string& name, const std::string& where);

}  // namespace profagent::quantize

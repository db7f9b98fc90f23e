#pragma once
// Quantization of every linear op whose weight is a model parameter, by rewriting the TorchScript
// code of a per-instance copy of the model (docs/quantization.md): aten::linear, addmm/matmul/mm with
// a constant weight, and nn.MultiheadAttention, whose forward (fused fast path and slow path alike)
// is replaced by the same computation written out with the projections as separate linears. Each
// layer gets its own scheme; the fp32 weights it no longer reads leave the model.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "profagent/json.hpp"
#include "profagent/quantize/scheme_names.hpp"
#include "profagent/status.hpp"

namespace torch {
namespace jit {
struct Module;
}
}  // namespace torch

namespace profagent::quantize {

// A quantizable layer: the module that owns the weight(s) a linear op reads.
struct LinearLayer {
  std::string path;                 // module path ("" is the root module)
  std::vector<std::string> ops;     // how it is used: linear, addmm, matmul, mm, attention_in_proj, attention_out_proj
  std::int64_t weight_bytes = 0;    // fp32 bytes of its weight(s) and bias(es)
};

// The model's quantizable layers, in module order.
Result<std::vector<LinearLayer>> find_linear_layers(const torch::jit::Module& model);

struct LayerQuantization {
  std::string path;
  Scheme scheme = Scheme::kNone;
  std::vector<std::string> ops;
  std::int64_t bytes_before = 0;    // fp32 weight + bias bytes
  std::int64_t bytes_after = 0;     // what the layer stores now (int8 + per-channel scales, fp16, ...)
  double weight_rel_error = 0.0;    // ||dequantized(w) - w|| / ||w||
  bool fp32_kept = false;           // the fp32 weight is still read elsewhere (e.g. weight tying), kept
  Json to_json() const;
};

struct QuantizedModel {
  std::shared_ptr<torch::jit::Module> module;  // saved and loaded back once, with `engine` selected
  std::vector<LayerQuantization> layers;        // every quantizable layer, `none` included
  std::string engine;
};

// `schemes`: layer path → scheme (a layer not named stays fp32; a name that is no layer is kNotFound).
// `engine`: the quantized engine to pack with ("" = torch_tk::preferred_quantized_engine()).
// int8_static is refused: "int8_static: needs the static int8 engine (issue 11 item 3)".
Result<QuantizedModel> quantize_linear_layers(const torch::jit::Module& model,
                                              const std::map<std::string, Scheme>& schemes,
                                              const std::string& engine = "");

}  // namespace profagent::quantize

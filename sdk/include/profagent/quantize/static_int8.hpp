#pragma once
// Static int8 post-training quantization of Conv2d and Linear layers (activations and weights int8,
// both scales fixed ahead of time from calibration data), through LibTorch's quantized CPU kernels.
//
// What quantize_static_int8 does to the model (docs/quantization.md, "Static int8"):
//   1. freezes an eval copy (torch::jit::freeze without its numeric rewrites): one flat graph whose
//      weights are constants; in-place ops made functional so each value is written once;
//   2. folds each BatchNorm into the convolution that feeds it (W·γ/σ, (b − μ)·γ/σ + β);
//   3. finds the patterns to quantize: conv2d / linear with a constant weight, a ReLU right after one
//      fused into it (quantized::conv2d_relu, linear_relu), and a residual add of two quantized values
//      (quantized::add, add_relu with the ReLU after it). Max/avg pooling, flatten, reshape and ReLU take
//      quantized tensors as they are, so quantized values flow from one pattern to the next; a value is
//      quantized (quantize_per_tensor, channels-last for 4-D) where it enters a quantized region and
//      dequantized where an fp32 op or the model's output reads it;
//   4. calibrates: runs the folded fp32 graph on `calibration_inputs` with every value that needs
//      scales as an extra output, and sets per-tensor asymmetric quint8 scales from an observer
//      ("minmax": the running range; "percentile": the range holding `percentile`% of a fixed-seed
//      sample of each value's elements);
//   5. quantizes each weight per output channel, symmetric int8 (zero point 0, ±127), keeps the bias fp32,
//      and prepacks it for the engine (quantized::conv2d_prepack, linear_prepack). The packed weights
//      live in small holder modules at the layer's original module path (`layer1.0.conv1._packed_params`),
//      so profiles still attribute each quantized op to its layer.
// The result replaces `model`: it runs in stock LibTorch and Python's torch.jit.load with the same
// quantized engine set first (the packed weights re-pack on load with the process's engine).
//
// Why not LibTorch's graph-mode passes (torch/csrc/jit/passes/quantization/): InsertObservers wants
// observer modules from a Python qconfig, and their Finalize keeps a quantize/dequantize pair around
// every op; this rewrite keeps int8 between consecutive quantized ops, which is what makes it fast.
#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::quantize {

struct StaticInt8Options {
  // Module paths of the Conv2d / Linear layers to quantize ("layer1.0.conv1"); empty: every one with a
  // constant weight. An unknown path is refused (with "did you mean").
  std::vector<std::string> layers;
  std::string observer = "minmax";  // "minmax" | "percentile"
  double percentile = 99.99;        // "percentile": the share of each value's elements its range holds
  std::uint64_t seed = 0;           // "percentile": the seed of the element sample
};

// One quantized op of the result.
struct StaticInt8Layer {
  std::string path;  // module path ("layer1.0.conv1"); an add: the module whose forward ran it
  std::string kind;  // "conv2d" | "linear" | "add"
  bool fused_bn = false;
  bool fused_relu = false;
  // Relative L2 error of the layer alone on the first calibration sample: the quantized op on the
  // quantized fp32 input, dequantized, against the fp32 op's output.
  double error = 0.0;
  std::int64_t bytes_before = 0;  // fp32 weight + bias (+ the folded BatchNorm's four vectors)
  std::int64_t bytes_after = 0;   // int8 weight + fp32 bias + per-channel scale (fp64) and zero point (i64)
};

struct StaticInt8Report {
  std::vector<StaticInt8Layer> layers;
  std::string engine;    // the quantized engine the weights were packed for: "onednn" | "qnnpack"
  std::string observer;  // as used
  std::int64_t calibration_batches = 0;
  std::int64_t quantize_nodes = 0;    // entries into quantized regions in the result's graph
  std::int64_t dequantize_nodes = 0;  // exits
};

// Quantizes `model` (replaced by its quantized version on success; left as it was on error).
// `calibration_inputs`: one forward's inputs each (no module), e.g. fixed-seed batches of the training
// split. Errors: kInvalidArgument (no calibration input, unknown observer or layer path), kUnsupported
// (no quantized engine, or a kernel the engine lacks: the message names the layer and the op),
// kRuntime (the model fails on a calibration input).
Result<StaticInt8Report> quantize_static_int8(torch::jit::Module& model,
                                              const std::vector<std::vector<c10::IValue>>& calibration_inputs,
                                              const StaticInt8Options& options = {});

}  // namespace profagent::quantize

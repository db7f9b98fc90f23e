#pragma once
// What the static int8 steps share (static_int8.cpp drives them): the folded graph's patterns, the
// observers, the packed weights. Private to profagent_quantize.
#include <torch/script.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "profagent/status.hpp"

namespace profagent::quantize {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// ---- fold_conv_bn.cpp ----
struct FoldedBatchNorm {
  std::int64_t bytes = 0;  // the BatchNorm's weight, bias, mean and variance (fp32), now inside the conv
};
// Folds every aten::batch_norm (eval, constant statistics) that reads a conv2d's only output into
// that conv's constant weight and bias. Returns the conv nodes that absorbed one.
std::unordered_map<const Node*, FoldedBatchNorm> fold_conv_batch_norms(Graph& graph);

// ---- static_patterns.cpp ----
struct QuantPattern {
  Node* anchor = nullptr;                         // aten::conv2d, aten::linear or aten::add
  Node* relu = nullptr;                           // the aten::relu fused into it, if any
  std::string kind;                               // "conv2d" | "linear" | "add"
  Value* output() const;                          // the relu's output, else the anchor's
  std::vector<Value*> activation_inputs() const;  // x for conv/linear; a and b for add
};

// The value a constant node holds (a prim::Constant tensor), or nullopt.
std::optional<at::Tensor> constant_tensor(const Value* value);
// True for ops that take a quantized tensor and give one with the same scales (pooling, flatten, ...).
bool passes_quantized_through(const Node* node);
// The conv2d / linear nodes with a constant weight in the graph's top block, in order.
std::vector<Node*> weighted_candidates(Graph& graph);
// The patterns to quantize among the graph's top-level nodes: `anchors` (conv2d/linear to quantize),
// and the adds whose two inputs end up quantized unless listed in `excluded_adds`.
std::vector<QuantPattern> plan_patterns(Graph& graph, const std::set<const Node*>& anchors,
                                        const std::set<const Node*>& excluded_adds);
// Every value calibration must see for `patterns`: each pattern's inputs and output.
std::vector<Value*> values_to_observe(const std::vector<QuantPattern>& patterns);

// ---- observer_ranges.cpp ----
struct QuantParams {
  double scale = 1.0;
  std::int64_t zero_point = 0;
};
// Collects what one graph value takes over the calibration batches.
class RangeObserver {
 public:
  RangeObserver(std::string kind, double percentile, std::uint64_t seed);
  void add(const at::Tensor& batch);
  // Asymmetric quint8 over [min(lo, 0), max(hi, 0)].
  QuantParams params() const;
  std::pair<double, double> range() const;
  const at::Tensor& first_sample() const { return first_sample_; }  // the first batch's sample 0
  const std::vector<std::int64_t>& sizes() const { return sizes_; }
  bool sizes_vary() const { return sizes_vary_; }

 private:
  std::string kind_;
  double percentile_;
  at::Generator generator_;
  double min_ = 0.0, max_ = 0.0;
  bool seen_ = false;
  std::vector<at::Tensor> samples_;
  at::Tensor first_sample_;
  std::vector<std::int64_t> sizes_;
  bool sizes_vary_ = false;
};
Status check_observer_kind(const std::string& kind, double percentile);

// ---- calibration_run.cpp ----
// Runs a copy of `graph` returning `observed` (values of `graph`) on each input list (module first
// prepended) and feeds each observer. Error: the forward's own message with the batch number.
Status run_calibration(Graph& graph, const c10::IValue& self, const std::vector<Value*>& observed,
                       const std::vector<std::vector<c10::IValue>>& inputs,
                       std::vector<RangeObserver>& observers);

// ---- packed_weights.cpp ----
// Per-output-channel symmetric int8 (zero point 0, ±127) of a float weight.
at::Tensor quantize_weight_per_channel(const at::Tensor& weight);
// quantized::conv2d_prepack / linear_prepack for the current engine; errors name `where` and the op.
Result<c10::IValue> prepack_conv2d(const at::Tensor& qweight, const std::optional<at::Tensor>& bias,
                                   const std::vector<std::int64_t>& stride,
                                   const std::vector<std::int64_t>& padding,
                                   const std::vector<std::int64_t>& dilation, std::int64_t groups,
                                   const std::string& where);
Result<c10::IValue> prepack_linear(const at::Tensor& qweight, const std::optional<at::Tensor>& bias,
                                   const std::string& where);
// Calls an operator by name through the dispatcher (boxed): the packed ops have custom-class arguments.
Result<std::vector<c10::IValue>> call_operator(const std::string& name, const std::string& overload,
                                               std::vector<c10::IValue> stack, const std::string& where);
// Bytes an int8 per-channel weight and fp32 bias take in the saved file.
std::int64_t packed_bytes(const at::Tensor& weight, const std::optional<at::Tensor>& bias);

}  // namespace profagent::quantize

// quantize_static_int8: freeze, fold, plan, calibrate, rewrite (static_int8.hpp says what each does).
#include "profagent/quantize/static_int8.hpp"

#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/remove_mutation.h>

#include <algorithm>
#include <cmath>

#include "profagent/text.hpp"
#include "profagent/torch/errors.hpp"
#include "static_internal.hpp"
#include "static_rewrite.hpp"

namespace profagent::quantize {

namespace {

// Selects the engine int8 weights are packed for during quantization and puts the previous one back.
class StaticEngineScope {
 public:
  explicit StaticEngineScope(c10::QEngine engine) : previous_(at::globalContext().qEngine()) {
    at::globalContext().setQEngine(engine);
  }
  ~StaticEngineScope() { at::globalContext().setQEngine(previous_); }
  StaticEngineScope(const StaticEngineScope&) = delete;
  StaticEngineScope& operator=(const StaticEngineScope&) = delete;

 private:
  c10::QEngine previous_;
};

Result<c10::QEngine> static_engine() {
  const auto& engines = at::globalContext().supportedQEngines();
  for (c10::QEngine wanted : {c10::QEngine::ONEDNN, c10::QEngine::QNNPACK}) {
    if (std::find(engines.begin(), engines.end(), wanted) != engines.end()) return wanted;
  }
  return Status(ErrorCode::kUnsupported,
                "static int8 needs the oneDNN or QNNPACK quantized engine; this LibTorch has neither");
}

std::string static_engine_name(c10::QEngine engine) {
  return engine == c10::QEngine::ONEDNN    ? "onednn"
         : engine == c10::QEngine::QNNPACK ? "qnnpack"
                                           : c10::toString(engine);
}

// Module path of every parameter tensor (by storage), so that a frozen graph's constant weight can be
// named: freezing turns parameters into constants that share the parameters' storage.
std::unordered_map<const void*, std::string> static_parameter_owners(const torch::jit::Module& module) {
  std::unordered_map<const void*, std::string> owners;
  for (const auto& entry : module.named_parameters(/*recurse=*/true)) {
    const std::size_t dot = entry.name.rfind('.');
    owners.emplace(entry.value.data_ptr(), dot == std::string::npos ? "" : entry.name.substr(0, dot));
  }
  return owners;
}

// The module whose forward ran `node`, from the call stack inlining left on it ("" for the root).
std::string static_scope_path(const Node* node) {
  auto stack = node->callstack();
  if (!stack) return "";
  std::string path;
  for (const auto& entry : (*stack)->vec()) {
    const auto& info = std::get<2>(entry);
    if (!info || info->instance_name().empty() || info->instance_name() == "self") continue;
    path += (path.empty() ? "" : ".") + info->instance_name();
  }
  return path;
}

std::int64_t static_tensor_bytes(const std::optional<at::Tensor>& tensor) {
  return tensor ? tensor->numel() * static_cast<std::int64_t>(tensor->element_size()) : 0;
}

double static_relative_l2(const at::Tensor& value, const at::Tensor& reference) {
  const double norm = reference.norm().item<double>();
  return (value - reference).norm().item<double>() / std::max(norm, 1e-12);
}

std::vector<std::int64_t> static_int_list(const Value* value) {
  return torch::jit::toIValue(value)->toIntVector();
}

struct StaticCandidate {
  std::string path;
  std::int64_t bytes_before = 0;
};

class StaticQuantizer {
 public:
  StaticQuantizer(torch::jit::Module frozen, const StaticInt8Options& options, c10::QEngine engine)
      : frozen_(std::move(frozen)), graph_(frozen_.get_method("forward").graph()), options_(options) {
    report_.engine = static_engine_name(engine);
    report_.observer = options.observer;
  }

  Status name_candidates(const std::unordered_map<const void*, std::string>& owners) {
    for (Node* node : weighted_candidates(*graph_)) {
      at::Tensor weight = *constant_tensor(node->input(1));
      auto owner = owners.find(weight.data_ptr());
      StaticCandidate candidate;
      candidate.path = owner != owners.end() ? owner->second : static_scope_path(node);
      candidate.bytes_before =
          static_tensor_bytes(weight) + static_tensor_bytes(constant_tensor(node->input(2)));
      candidates_[node] = candidate;
      order_.push_back(node);
    }
    if (options_.layers.empty()) {
      anchors_.insert(order_.begin(), order_.end());
      return Status::ok();
    }
    std::vector<std::string> known;
    for (const Node* node : order_) known.push_back(candidates_.at(node).path);
    for (const std::string& layer : options_.layers) {
      if (std::find(known.begin(), known.end(), layer) == known.end()) {
        auto close = close_matches(layer, known);
        return Status(ErrorCode::kInvalidArgument,
                      "layer '" + layer + "' is not a Conv2d or Linear with a constant weight in this model" +
                          (close.empty() ? "" : "; did you mean " + join(close, ", ") + "?"));
      }
    }
    for (const Node* node : order_) {
      const std::string& path = candidates_.at(node).path;
      if (std::find(options_.layers.begin(), options_.layers.end(), path) != options_.layers.end())
        anchors_.insert(node);
    }
    return Status::ok();
  }

  Status calibrate(const std::vector<std::vector<c10::IValue>>& inputs) {
    folded_ = fold_conv_batch_norms(*graph_);
    torch::jit::EliminateDeadCode(graph_);
    patterns_ = plan_patterns(*graph_, anchors_, {});
    observed_ = values_to_observe(patterns_);
    for (std::size_t i = 0; i < observed_.size(); ++i) {
      observers_.emplace_back(options_.observer, options_.percentile, options_.seed + i);
      index_[observed_[i]] = i;
    }
    PROFAGENT_RETURN_IF_ERROR(run_calibration(*graph_, frozen_._ivalue(), observed_, inputs, observers_));
    report_.calibration_batches = static_cast<std::int64_t>(inputs.size());
    // quantized::add wants both inputs of one shape; an add that broadcasts stays fp32.
    std::set<const Node*> excluded;
    for (const QuantPattern& pattern : patterns_) {
      if (pattern.kind != "add") continue;
      const RangeObserver& a = observer(pattern.anchor->input(0));
      const RangeObserver& b = observer(pattern.anchor->input(1));
      if (a.sizes() != b.sizes() || a.sizes_vary() || b.sizes_vary()) excluded.insert(pattern.anchor);
    }
    if (!excluded.empty()) patterns_ = plan_patterns(*graph_, anchors_, excluded);
    return Status::ok();
  }

  Result<StaticInt8Report> rewrite() {
    StaticRewriter rewriter(frozen_, *graph_);
    std::unordered_map<const Node*, const QuantPattern*> by_anchor;
    for (const QuantPattern& pattern : patterns_) by_anchor[pattern.anchor] = &pattern;
    std::vector<Node*> nodes(graph_->nodes().begin(), graph_->nodes().end());
    for (Node* node : nodes) {
      if (rewriter.superseded(node)) continue;
      auto found = by_anchor.find(node);
      if (found != by_anchor.end()) {
        PROFAGENT_RETURN_IF_ERROR(rewrite_pattern(*found->second, rewriter));
      } else if (!rewriter.carry_through(node) && candidates_.count(node)) {
        PROFAGENT_RETURN_IF_ERROR(keep_fp32_weights(node, rewriter));
      }
    }
    rewriter.finish(report_.quantize_nodes, report_.dequantize_nodes);
    return report_;
  }

  torch::jit::Module& result() { return frozen_; }

 private:
  const RangeObserver& observer(const Value* value) const { return observers_.at(index_.at(value)); }

  bool is_4d(const Value* value) const { return observer(value).sizes().size() == 4; }

  // A layer left in fp32 keeps its (folded) weights as parameters of its path, as they were.
  Status keep_fp32_weights(Node* node, StaticRewriter& rewriter) {
    const std::string& path = candidates_.at(node).path;
    torch::jit::WithInsertPoint here(node);
    for (std::size_t i : {std::size_t{1}, std::size_t{2}}) {
      auto tensor = constant_tensor(node->input(i));
      if (!tensor) continue;
      PROFAGENT_ASSIGN_OR_RETURN(Value * read,
                                 rewriter.attach(path, i == 1 ? "weight" : "bias", *tensor, true));
      node->replaceInput(i, read);
    }
    return Status::ok();
  }

  Status rewrite_pattern(const QuantPattern& pattern, StaticRewriter& rewriter) {
    Node* anchor = pattern.anchor;
    torch::jit::WithInsertPoint here(anchor);
    const QuantParams out = observer(pattern.output()).params();
    StaticInt8Layer layer;
    layer.kind = pattern.kind;
    layer.fused_relu = pattern.relu != nullptr;
    std::vector<Value*> inputs;
    std::vector<c10::IValue> sample_stack;  // the layer alone on the first calibration sample
    for (Value* input : pattern.activation_inputs()) {
      const QuantParams in = observer(input).params();
      const bool channels_last = pattern.kind != "linear" && is_4d(input);
      inputs.push_back(rewriter.quantized_input(input, in, channels_last));
      at::Tensor sample = observer(input).first_sample();
      if (channels_last) sample = sample.contiguous(at::MemoryFormat::ChannelsLast);
      sample_stack.push_back(at::quantize_per_tensor(sample, in.scale, in.zero_point, at::kQUInt8));
    }
    std::string op;
    if (pattern.kind == "add") {
      layer.path = static_scope_path(anchor);
      op = layer.fused_relu ? "quantized::add_relu" : "quantized::add";
    } else {
      const StaticCandidate& candidate = candidates_.at(anchor);
      layer.path = candidate.path;
      layer.bytes_before = candidate.bytes_before;
      auto fold = folded_.find(anchor);
      if (fold != folded_.end()) {
        layer.fused_bn = true;
        layer.bytes_before += fold->second.bytes;
      }
      const std::string where = "layer '" + layer.path + "' (" + anchor->kind().toQualString() + ")";
      at::Tensor qweight = quantize_weight_per_channel(*constant_tensor(anchor->input(1)));
      auto bias = constant_tensor(anchor->input(2));
      if (bias) *bias = bias->to(at::kFloat);
      layer.bytes_after = packed_bytes(qweight, bias);
      c10::IValue packed;
      if (pattern.kind == "conv2d") {
        PROFAGENT_ASSIGN_OR_RETURN(
            packed, prepack_conv2d(qweight, bias, static_int_list(anchor->input(3)),
                                   static_int_list(anchor->input(4)), static_int_list(anchor->input(5)),
                                   torch::jit::toIValue(anchor->input(6))->toInt(), where));
        op = layer.fused_relu ? "quantized::conv2d_relu" : "quantized::conv2d";
      } else {
        PROFAGENT_ASSIGN_OR_RETURN(packed, prepack_linear(qweight, bias, where));
        op = layer.fused_relu ? "quantized::linear_relu" : "quantized::linear";
      }
      PROFAGENT_ASSIGN_OR_RETURN(Value * packed_value, rewriter.attach_packed(layer.path, packed));
      inputs.push_back(packed_value);
      sample_stack.push_back(packed);
    }
    // The layer's own error: its quantized op on the first calibration sample against the fp32 output.
    sample_stack.push_back(out.scale);
    sample_stack.push_back(out.zero_point);
    const std::string where = "layer '" + layer.path + "'";
    PROFAGENT_ASSIGN_OR_RETURN(auto result,
                               call_operator(op, pattern.kind == "conv2d" ? "new" : "", sample_stack, where));
    layer.error =
        static_relative_l2(result.at(0).toTensor().dequantize(), observer(pattern.output()).first_sample());

    std::vector<torch::jit::NamedValue> args(inputs.begin(), inputs.end());
    args.emplace_back(out.scale);
    args.emplace_back(out.zero_point);
    Value* quantized = graph_->insert(c10::Symbol::fromQualString(op), args);
    std::vector<Node*> superseded = {anchor};
    if (pattern.relu != nullptr) superseded.push_back(pattern.relu);
    rewriter.set_quantized(pattern.output(), quantized, superseded);
    report_.layers.push_back(layer);
    return Status::ok();
  }

  torch::jit::Module frozen_;
  std::shared_ptr<Graph> graph_;
  const StaticInt8Options& options_;
  StaticInt8Report report_;
  std::unordered_map<const Node*, StaticCandidate> candidates_;
  std::vector<Node*> order_;
  std::set<const Node*> anchors_;
  std::unordered_map<const Node*, FoldedBatchNorm> folded_;
  std::vector<QuantPattern> patterns_;
  std::vector<Value*> observed_;
  std::vector<RangeObserver> observers_;
  std::unordered_map<const Value*, std::size_t> index_;
};

}  // namespace

Result<StaticInt8Report> quantize_static_int8(torch::jit::Module& model,
                                              const std::vector<std::vector<c10::IValue>>& calibration_inputs,
                                              const StaticInt8Options& options) {
  PROFAGENT_RETURN_IF_ERROR(check_observer_kind(options.observer, options.percentile));
  if (calibration_inputs.empty())
    return Status(ErrorCode::kInvalidArgument, "static int8 needs at least one calibration input");
  PROFAGENT_ASSIGN_OR_RETURN(c10::QEngine engine, static_engine());
  StaticEngineScope engine_scope(engine);
  torch::NoGradGuard no_grad;

  torch::jit::Module copy = model.clone();
  copy.eval();
  const auto owners = static_parameter_owners(copy);
  torch::jit::Module frozen;
  try {
    // Without the numeric rewrites: BatchNorm folding here is ours, done in double.
    frozen = torch::jit::freeze(copy, c10::nullopt, /*optimize_numerics=*/false);
    auto graph = frozen.get_method("forward").graph();
    torch::jit::RemoveTensorMutation(graph);
    torch::jit::InplaceToFunctionalActivation(graph);
  } catch (const std::exception& error) {
    return Status(ErrorCode::kUnsupported,
                  "static int8: the model cannot be frozen: " + torch_tk::torch_error_reason(error));
  }
  StaticQuantizer quantizer(frozen, options, engine);
  PROFAGENT_RETURN_IF_ERROR(quantizer.name_candidates(owners));
  PROFAGENT_RETURN_IF_ERROR(quantizer.calibrate(calibration_inputs));
  PROFAGENT_ASSIGN_OR_RETURN(StaticInt8Report report, quantizer.rewrite());
  model = quantizer.result();
  return report;
}

}  // namespace profagent::quantize

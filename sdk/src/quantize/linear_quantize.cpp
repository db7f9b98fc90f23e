// The linear quantizer's driver (linear_quantize.hpp): per-instance copy, linear sites and attention
// modules found, each layer's kernel made and called, unread fp32 weights removed, saved and loaded back.
#include "profagent/quantize/linear_quantize.hpp"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/script.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <tuple>

#include "linear_internal.hpp"
#include "profagent/text.hpp"
#include "profagent/torch/errors.hpp"
#include "profagent/torch/quantized_engine.hpp"

namespace profagent::quantize {

namespace {

using detail::LinearSite;

std::string linear_join_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

std::set<std::string> attention_paths_of(const torch::jit::Module& model) {
  std::set<std::string> paths;
  for (const auto& item : model.named_modules())
    if (detail::is_rewritable_attention(item.value)) paths.insert(item.name);
  return paths;
}

void linear_add_op(std::vector<std::string>& ops, const std::string& op) {
  if (std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
}

// Every (module type, attribute) some method reads with prim::GetAttr.
void linear_collect_reads(torch::jit::Block* block, std::set<std::pair<const c10::Type*, std::string>>& reads) {
  for (torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::GetAttr)
      reads.emplace(node->input(0)->type().get(), node->s(torch::jit::attr::name));
    for (torch::jit::Block* inner : node->blocks()) linear_collect_reads(inner, reads);
  }
}

std::int64_t linear_parameter_bytes(const torch::jit::Module& owner, const std::string& name) {
  if (name.empty() || !owner.hasattr(name)) return 0;
  c10::IValue value = owner.attr(name);
  if (!value.isTensor()) return 0;
  return static_cast<std::int64_t>(value.toTensor().numel() * value.toTensor().element_size());
}

std::string linear_bias_of(const torch::jit::Module& owner, const std::string& name) {
  return owner.hasattr(name) && owner.attr(name).isTensor() ? name : std::string();
}

Status linear_unknown_layer(const std::string& name, const std::vector<std::string>& layers) {
  std::string message = "no quantizable layer '" + name + "'";
  auto close = close_matches(name, layers);
  if (!close.empty()) message += "; did you mean '" + close.front() + "'?";
  return Status(ErrorCode::kNotFound, message);
}

struct LinearAnalysis {
  torch_tk::OwnTypedModule typed;
  std::vector<LinearSite> sites;
  std::set<std::string> attention;
};

Result<LinearAnalysis> linear_analyse(const torch::jit::Module& model, const std::set<std::string>& replaced_attention) {
  LinearAnalysis analysis;
  analysis.attention = attention_paths_of(model);
  auto skip = [&replaced_attention](const std::string& path, const std::string& method) {
    if (method != "forward") return false;
    if (replaced_attention.count(path)) return true;
    // out_proj's own forward is never called by MultiheadAttention; left out, so it reads no weight.
    const std::string suffix = ".out_proj";
    return path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0 &&
           replaced_attention.count(path.substr(0, path.size() - suffix.size()));
  };
  PROFAGENT_ASSIGN_OR_RETURN(analysis.typed, torch_tk::copy_with_instance_types(model, skip));
  analysis.sites = detail::find_linear_sites(analysis.typed);
  return analysis;
}

// Layer paths in module order: every site's owner, every rewritable attention and its out_proj.
std::vector<std::string> linear_layer_order(const torch::jit::Module& model, const LinearAnalysis& analysis) {
  std::set<std::string> owners;
  for (const LinearSite& site : analysis.sites) owners.insert(site.owner_path);
  for (const std::string& path : analysis.attention) {
    owners.insert(path);
    owners.insert(linear_join_path(path, "out_proj"));
  }
  std::vector<std::string> ordered;
  for (const auto& item : model.named_modules())
    if (owners.count(item.name)) ordered.push_back(item.name);
  return ordered;
}

}  // namespace

Json LayerQuantization::to_json() const {
  return Json{{"layer", path},
              {"scheme", scheme_name(scheme)},
              {"ops", ops},
              {"bytes_before", bytes_before},
              {"bytes_after", bytes_after},
              {"weight_rel_error", weight_rel_error},
              {"fp32_kept", fp32_kept}};
}

Result<std::vector<LinearLayer>> find_linear_layers(const torch::jit::Module& model) {
  PROFAGENT_ASSIGN_OR_RETURN(LinearAnalysis analysis, linear_analyse(model, {}));
  std::map<std::string, LinearLayer> layers;
  std::set<std::pair<std::string, std::string>> counted;
  auto count = [&](const std::string& path, const std::string& weight, const std::string& bias) {
    if (!counted.emplace(path, weight).second) return;
    const torch::jit::Module& owner = analysis.typed.instances.at(path);
    layers[path].weight_bytes += linear_parameter_bytes(owner, weight) + linear_parameter_bytes(owner, bias);
  };
  for (const std::string& path : analysis.attention) {
    linear_add_op(layers[path].ops, "attention_in_proj");
    count(path, "in_proj_weight", "in_proj_bias");
    const std::string out = linear_join_path(path, "out_proj");
    linear_add_op(layers[out].ops, "attention_out_proj");
    count(out, "weight", "bias");
  }
  for (const LinearSite& site : analysis.sites) {
    if (layers.count(site.owner_path) && !layers[site.owner_path].ops.empty() &&
        (layers[site.owner_path].ops.front().rfind("attention", 0) == 0))
      continue;  // the attention's slow path: the layer is already the attention's
    linear_add_op(layers[site.owner_path].ops, site.op);
    count(site.owner_path, site.weight, site.bias);
  }
  std::vector<LinearLayer> out;
  for (const std::string& path : linear_layer_order(model, analysis)) {
    LinearLayer layer = layers[path];
    layer.path = path;
    out.push_back(std::move(layer));
  }
  return out;
}

Result<QuantizedModel> quantize_linear_layers(const torch::jit::Module& model,
                                              const std::map<std::string, Scheme>& schemes,
                                              const std::string& engine) {
  for (const auto& [path, scheme] : schemes)
    if (scheme == Scheme::kInt8Static)
      return Status(ErrorCode::kUnsupported, "int8_static: needs the static int8 engine (issue 11 item 3)")
          .with_context("layer '" + path + "'");
  std::string chosen = engine;
  if (chosen.empty()) {
    PROFAGENT_ASSIGN_OR_RETURN(chosen, torch_tk::preferred_quantized_engine());
  }
  torch_tk::QuantizedEngineGuard guard(chosen);
  if (!guard.ok()) return guard.error();
  auto scheme_of = [&schemes](const std::string& path) {
    auto found = schemes.find(path);
    return found == schemes.end() ? Scheme::kNone : found->second;
  };

  try {
    std::set<std::string> replaced;
    for (const std::string& path : attention_paths_of(model))
      if (scheme_of(path) != Scheme::kNone || scheme_of(linear_join_path(path, "out_proj")) != Scheme::kNone)
        replaced.insert(path);
    PROFAGENT_ASSIGN_OR_RETURN(LinearAnalysis analysis, linear_analyse(model, replaced));
    const std::vector<std::string> order = linear_layer_order(model, analysis);
    for (const auto& [path, scheme] : schemes) {
      (void)scheme;
      if (std::find(order.begin(), order.end(), path) == order.end()) return linear_unknown_layer(path, order);
    }

    std::map<std::string, LayerQuantization> records;
    for (const std::string& path : order) {
      records[path].path = path;
      records[path].scheme = scheme_of(path);
    }
    // (owner path, weight, bias) → parameters a kernel consumed: removed below when nothing reads them.
    std::set<std::tuple<std::string, std::string, std::string>> consumed;
    std::map<std::tuple<std::string, std::string, bool, std::string, bool>, std::string> kernels;
    auto record = [&](const std::string& path, const std::string& op, const detail::KernelMade& made) {
      LayerQuantization& layer = records[path];
      linear_add_op(layer.ops, op);
      layer.bytes_before += made.bytes_before;
      layer.bytes_after += made.bytes_after;
      layer.weight_rel_error = std::max(layer.weight_rel_error, made.weight_rel_error);
    };

    // A weight one site reads with a bias computed at run time (Swin's qkv_bias passes through an
    // `if` in shifted_window_attention) gets one kernel taking the bias as an argument for all its
    // sites (qkv's own forward too): one int8 copy of the weight, not one per kind of site.
    std::set<std::tuple<std::string, std::string, bool>> bias_at_run_time;
    for (const LinearSite& site : analysis.sites)
      if (site.bias_value != nullptr) bias_at_run_time.emplace(site.owner_path, site.weight, site.stored_transposed);
    for (LinearSite& site : analysis.sites) {
      if (site.bias.empty() || !bias_at_run_time.count({site.owner_path, site.weight, site.stored_transposed})) continue;
      site.bias_value = site.bias_input;
      site.bias.clear();
    }
    for (const LinearSite& site : analysis.sites) {
      const Scheme scheme = scheme_of(site.owner_path);
      if (scheme == Scheme::kNone) continue;
      torch::jit::Module owner = analysis.typed.instances.at(site.owner_path);
      const bool bias_argument = site.bias_value != nullptr;
      auto key = std::make_tuple(site.owner_path, site.weight, site.stored_transposed, site.bias, bias_argument);
      auto found = kernels.find(key);
      if (found == kernels.end()) {
        detail::KernelMade made =
            detail::make_linear_kernel(owner, site.weight, site.stored_transposed, site.bias, bias_argument, scheme);
        record(site.owner_path, site.op, made);
        found = kernels.emplace(key, made.method).first;
        consumed.emplace(site.owner_path, site.weight, site.bias);
      } else {
        linear_add_op(records[site.owner_path].ops, site.op);
      }
      torch::jit::Graph* graph = site.node->owningGraph();
      torch::jit::WithInsertPoint insert(site.node);
      std::vector<torch::jit::Value*> arguments{site.owner, site.input};
      if (bias_argument) arguments.push_back(site.bias_value);
      torch::jit::Node* call = graph->insertNode(graph->create(c10::prim::CallMethod, arguments));
      call->s_(torch::jit::attr::name, found->second);
      call->output()->setType(site.node->output()->type());
      site.node->output()->replaceAllUsesWith(call->output());
      site.node->destroy();
    }

    for (const std::string& path : replaced) {
      torch::jit::Module attention = analysis.typed.instances.at(path);
      const std::string out_path = linear_join_path(path, "out_proj");
      torch::jit::Module out_proj = analysis.typed.instances.at(out_path);
      detail::KernelMade in = detail::make_linear_kernel(attention, "in_proj_weight", false,
                                                         linear_bias_of(attention, "in_proj_bias"), false, scheme_of(path));
      detail::KernelMade out = detail::make_linear_kernel(out_proj, "weight", false, linear_bias_of(out_proj, "bias"), false,
                                                          scheme_of(out_path));
      detail::define_attention_forward(attention, in.method, out.method);
      record(path, "attention_in_proj", in);
      record(out_path, "attention_out_proj", out);
      if (scheme_of(path) != Scheme::kNone) consumed.emplace(path, "in_proj_weight", linear_bias_of(attention, "in_proj_bias"));
      if (scheme_of(out_path) != Scheme::kNone) consumed.emplace(out_path, "weight", linear_bias_of(out_proj, "bias"));
    }

    // The replaced ops' prim::GetAttr of the fp32 weight are left without uses: removed first, so that
    // only real reads keep a weight.
    std::set<std::pair<const c10::Type*, std::string>> reads;
    for (const auto& [path, instance] : analysis.typed.instances) {
      (void)path;
      for (torch::jit::Function* method : instance.type()->methods()) {
        std::shared_ptr<torch::jit::Graph> graph = torch::jit::toGraphFunction(*method).graph();
        torch::jit::EliminateDeadCode(graph);
        linear_collect_reads(graph->block(), reads);
      }
    }
    for (const auto& [path, weight, bias] : consumed) {
      torch::jit::Module owner = analysis.typed.instances.at(path);
      for (const std::string& name : {weight, bias}) {
        if (name.empty() || !owner.type()->hasAttribute(name)) continue;
        if (reads.count({owner.type().get(), name})) {
          if (name == weight) records[path].fp32_kept = true;
          continue;
        }
        // The object's slot first: Object::unsafeRemoveAttr finds it through the type's attribute.
        owner._ivalue()->unsafeRemoveAttr(name);
        owner.type()->unsafeRemoveAttribute(name);
      }
    }
    for (auto& [path, layer] : records)
      if (layer.scheme == Scheme::kNone || layer.fp32_kept) layer.bytes_after = layer.bytes_before;

    // Saved and loaded back once, with the engine selected: what a user of the file gets.
    std::stringstream buffer;
    analysis.typed.module.save(buffer);
    auto loaded = std::make_shared<torch::jit::Module>(torch::jit::load(buffer));
    loaded->eval();
    QuantizedModel out;
    out.module = std::move(loaded);
    out.engine = chosen;
    for (const std::string& path : order) out.layers.push_back(records[path]);
    return out;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "quantizing the linear layers failed: " + torch_tk::torch_error_reason(e));
  }
}

}  // namespace profagent::quantize

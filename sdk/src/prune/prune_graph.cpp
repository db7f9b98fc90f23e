// Building the dependency graph: the working copy, its inlined and specialised forward, shapes from
// one run, the rules applied node by node, then groups from the union-find classes (prune_groups.cpp;
// docs/pruning.md).
#include "profagent/prune/prune_graph.hpp"

#include <torch/csrc/jit/passes/inliner.h>

#include <chrono>
#include <exception>
#include <unordered_set>

#include "profagent/clock.hpp"
#include "profagent/log.hpp"
#include "prune_internal.hpp"
#include "prune_attention_written_out.hpp"
#include "prune_ir.hpp"
#include "prune_module_types.hpp"

namespace profagent::torch_tk {

namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

class Builder {
 public:
  explicit Builder(PruneAnalysis& analysis) : a_(analysis) {}

  void specialise() {
    // Branches whose condition depends only on constants and module attributes (not `training`) take
    // the same way for every input of this instance: keep the way the example took.
    bool changed = true;
    while (changed) {
      changed = false;
      std::vector<Node*> ifs;
      collect_ifs(a_.graph->block(), ifs);
      for (Node* node : ifs) {
        if (!static_value(node->input(0), 0)) continue;
        const Block* taken = nullptr;
        for (const Block* block : node->blocks()) {
          if (a_.executed_blocks.count(block)) taken = block;
        }
        if (taken == nullptr) continue;
        inline_block(node, const_cast<Block*>(taken));
        changed = true;
        break;  // node lists changed: collect again
      }
    }
  }

  void resolve_params() {
    const Value* self = a_.graph->inputs().at(0);
    std::vector<Node*> nodes;
    collect_nodes(a_.graph->block(), nodes);
    for (Node* node : nodes) {
      if (node->kind() != c10::prim::GetAttr || !is_tensor_like(node->output())) continue;
      auto path = module_path_of(node->input(0), self);
      if (!path) continue;
      std::optional<torch::jit::Module> owner = find_submodule(a_.module, *path);
      if (!owner) continue;
      const std::string attr = node->s(torch::jit::attr::name);
      auto type = owner->type();
      auto slot = type->findAttributeSlot(attr);
      if (!slot) continue;
      c10::IValue tensor = owner->_ivalue()->getSlot(*slot);
      if (!tensor.isTensor() || !tensor.toTensor().defined()) continue;
      if (!type->is_parameter(*slot) && !type->is_buffer(*slot)) {
        tensor_attributes_.push_back(node->output());
        continue;
      }
      ParamRef ref;
      ref.module_path = *path;
      ref.attr = attr;
      ref.name = path->empty() ? attr : *path + "." + attr;
      ref.is_buffer = type->is_buffer(*slot);
      ref.tensor = tensor.toTensor();
      if (!a_.param_values.count(ref.name)) param_order_.push_back(ref.name);
      a_.param_values[ref.name].push_back(node->output());
      a_.params[node->output()] = std::move(ref);
    }
  }

  void apply_rules() {
    find_modules_analysed_by_op(a_.graph->block());
    walk(a_.graph->block(), true);
    // The same parameter read twice (several GetAttr) is one tensor: its dims are the same slots.
    for (const auto& [name, values] : a_.param_values) {
      for (std::size_t i = 1; i < values.size(); ++i) {
        RuleContext context(a_, const_cast<Node*>(values[i]->node()));
        context.identity_all_dims(values[0], values[i]);
      }
    }
    RuleContext graph_context(a_, a_.graph->return_node());
    for (const Value* input : a_.graph->inputs()) {
      if (input != a_.graph->inputs().at(0)) freeze_flattened(graph_context, input, "model input");
    }
    for (const Value* output : a_.graph->outputs()) freeze_flattened(graph_context, output, "model output");
    for (const Value* value : tensor_attributes_) {
      graph_context.freeze_value(value, "tensor attribute that is not a parameter or buffer");
    }
  }

  void finish() { build_groups(a_, param_order_); }

 private:
  static void collect_ifs(Block* block, std::vector<Node*>& out) {
    for (Node* node : block->nodes()) {
      if (node->kind() == c10::prim::If) out.push_back(node);
      for (Block* sub : node->blocks()) collect_ifs(sub, out);
    }
  }

  static void collect_nodes(Block* block, std::vector<Node*>& out) {
    for (Node* node : block->nodes()) {
      out.push_back(node);
      for (Block* sub : node->blocks()) collect_nodes(sub, out);
    }
  }

  bool static_value(const Value* value, int depth) const {
    if (depth > 32) return false;
    const Value* self = a_.graph->inputs().at(0);
    if (value == self) return true;
    const Node* node = value->node();
    const auto kind = node->kind();
    if (kind == c10::prim::Constant) return true;
    if (kind == c10::prim::Param) return false;
    if (kind == c10::prim::GetAttr) {
      if (node->s(torch::jit::attr::name) == "training") return false;
      if (is_tensor_type(value) || value->type()->kind() == c10::TypeKind::OptionalType) return false;
      return static_value(node->input(0), depth + 1);
    }
    if (kind == c10::aten::is_scripting) return true;
    if (!node->blocks().empty() || node->hasSideEffects()) return false;
    for (const Value* input : node->inputs()) {
      const auto input_kind = input->type()->kind();
      if (input_kind == c10::TypeKind::TensorType || input_kind == c10::TypeKind::ListType) return false;
      if (!static_value(input, depth + 1)) return false;
    }
    for (const Value* output : node->outputs()) {
      if (output->type()->kind() == c10::TypeKind::TensorType) return false;
    }
    return true;
  }

  // Replaces an If by the nodes of the block that ran; values keep their identity (and shapes).
  void inline_block(Node* node, Block* taken) {
    for (auto it = taken->nodes().begin(); it != taken->nodes().end();) {
      Node* inner = *it;
      ++it;
      inner->moveBefore(node);
    }
    for (std::size_t i = 0; i < node->outputs().size(); ++i) {
      node->output(i)->replaceAllUsesWith(taken->outputs()[i]);
    }
    forget_block_values(node);
    node->destroy();
  }

  void forget_block_values(Node* node) {
    for (Block* block : node->blocks()) {
      a_.executed_blocks.erase(block);
      for (Node* inner : block->nodes()) {
        for (Value* output : inner->outputs()) a_.shapes.erase(output);
        forget_block_values(inner);
      }
    }
    for (Value* output : node->outputs()) a_.shapes.erase(output);
  }

  void freeze_flattened(RuleContext& context, const Value* value, const std::string& reason) {
    std::vector<const Value*> tensors;
    flatten_tensors(value, tensors);
    for (const Value* tensor : tensors) context.freeze_value(tensor, reason);
  }

  bool has_tensors(const Node* node) const {
    std::vector<const Value*> tensors;
    for (const Value* input : node->inputs()) flatten_tensors(input, tensors);
    for (const Value* output : node->outputs()) {
      if (is_tensor_type(output)) return true;
    }
    return !tensors.empty();
  }

  void walk(Block* block, bool ran) {
    for (Node* node : block->nodes()) {
      if (ran) {
        visit(node);
      } else {
        visit_not_executed(node);
      }
      for (Block* sub : node->blocks()) walk(sub, ran && a_.executed_blocks.count(sub) > 0);
    }
    if (!ran) {
      RuleContext context(a_, block->return_node());
      for (const Value* output : block->outputs()) {
        if (a_.shapes.count(output) == 0) freeze_flattened(context, output, "returned by a branch that did not run");
      }
    }
  }

  void visit_not_executed(Node* node) {
    const std::string op = node->kind().toQualString();
    if (outside_module_op(node)) return;
    if (is_metadata_op(op) || node->kind() == c10::prim::GetAttr || node->kind() == c10::prim::Constant ||
        node->kind() == c10::prim::ListConstruct || node->kind() == c10::prim::TupleConstruct) {
      return;
    }
    if (sizes_follow_pruning(node)) return;  // sized by run-time sizes and attributes: adapts by itself
    RuleContext context(a_, node);
    std::vector<const Value*> tensors;
    for (const Value* input : node->inputs()) flatten_tensors(input, tensors);
    for (const Value* tensor : tensors) {
      if (a_.shapes.count(tensor) || a_.params.count(tensor)) {
        context.freeze_value(tensor, "read by " + a_.where(node) + " in a branch that did not run for the example input");
      }
    }
  }

  // The module (class) whose analysis a node's op stands for (PruneRules::analyse_module_by), or nullptr.
  const c10::ClassType* module_analysed_by(const Node* node, const std::string** op_out = nullptr) const {
    auto stack = node->callstack();
    if (!stack) return nullptr;
    for (const auto& entry : (*stack)->vec()) {
      const auto& info = std::get<2>(entry);
      if (!info || !info->class_type() || !info->class_type()->name()) continue;
      const std::string* op = a_.rules->module_op(info->class_type()->name()->name());
      if (op == nullptr) continue;
      if (op_out != nullptr) *op_out = op;
      return info->class_type().get();
    }
    return nullptr;
  }

  // Instances whose code runs their analysing op: only those are analysed by it alone (a
  // nn.MultiheadAttention written out, prune_attention_written_out.hpp, is analysed op by op).
  void find_modules_analysed_by_op(const Block* block) {
    for (const Node* node : block->nodes()) {
      const std::string* op = nullptr;
      const c10::ClassType* type = module_analysed_by(node, &op);
      if (type != nullptr && *op == node->kind().toQualString()) analysed_by_op_.insert(type);
      for (const Block* inner : node->blocks()) find_modules_analysed_by_op(inner);
    }
  }

  // Whether the node is inside a module analysed through one op only and is not that op.
  bool outside_module_op(const Node* node) const {
    const std::string* op = nullptr;
    const c10::ClassType* type = module_analysed_by(node, &op);
    return type != nullptr && analysed_by_op_.count(type) && *op != node->kind().toQualString();
  }

  void visit(Node* node) {
    if (outside_module_op(node)) return;
    const auto kind = node->kind();
    for (const Value* input : node->inputs()) {
      if (input->node()->kind() == c10::prim::Param && input != a_.graph->inputs().at(0) &&
          input->node()->owningBlock() == a_.graph->block()) {
        a_.reads_input.insert(node);
      }
    }
    RuleContext context(a_, node);
    if (kind == c10::prim::Constant) {
      if (is_tensor_type(node->output())) context.freeze_value(node->output(), "tensor constant");
      return;
    }
    // prim::Uninitialized: the placeholder of a variable of a branch that returned early; never read.
    if (kind == c10::prim::GetAttr || kind == c10::prim::ListConstruct || kind == c10::prim::TupleConstruct ||
        kind == c10::prim::Uninitialized) {
      return;
    }
    if (kind == c10::prim::If) {
      for (std::size_t b = 0; b < node->blocks().size(); ++b) {
        const Block* block = node->blocks()[b];
        if (!a_.executed_blocks.count(block)) continue;
        for (std::size_t i = 0; i < node->outputs().size(); ++i) {
          const Value* out = node->output(i);
          if (!is_tensor_like(out) || !a_.shapes.count(out)) continue;  // an Optional that was None
          context.identity_all_dims(out, block->outputs()[i]);
        }
      }
      return;
    }
    if ((kind == c10::prim::ListUnpack || kind == c10::prim::TupleUnpack) &&
        (node->input(0)->node()->kind() == c10::prim::ListConstruct ||
         node->input(0)->node()->kind() == c10::prim::TupleConstruct)) {
      const Node* construct = node->input(0)->node();
      for (std::size_t i = 0; i < node->outputs().size() && i < construct->inputs().size(); ++i) {
        if (is_tensor_type(node->output(i))) context.identity_all_dims(construct->input(i), node->output(i));
      }
      return;
    }
    if (kind == c10::prim::ListUnpack && is_split_output(node->input(0))) return;  // the split's rule maps it
    const std::string op = kind.toQualString();
    if (kind == c10::aten::__getitem__ && is_split_output(node->input(0))) return;
    if (const PruneRule* rule = a_.rules->find(op)) {
      (*rule)(context);
      return;
    }
    if (is_metadata_op(op) || !has_tensors(node)) return;
    a_.warn("no pruning rule for " + a_.where(node) + ": its tensors are frozen");
    context.freeze_all("no pruning rule for " + a_.where(node));
  }

  bool is_split_output(const Value* list) const {
    const std::string kind = list->node()->kind().toQualString();
    return a_.rules->find(kind) != nullptr && list->type()->kind() == c10::TypeKind::ListType &&
           list->node()->kind() != c10::prim::ListConstruct;
  }

  PruneAnalysis& a_;
  std::vector<std::string> param_order_;
  std::vector<const Value*> tensor_attributes_;
  std::unordered_set<const c10::ClassType*> analysed_by_op_;
};

}  // namespace

DependencyGraph::DependencyGraph(std::unique_ptr<PruneAnalysis> analysis) : analysis_(std::move(analysis)) {}
DependencyGraph::~DependencyGraph() = default;

const std::vector<PruneGroup>& DependencyGraph::groups() const { return analysis_->groups; }

const PruneGroup* DependencyGraph::find_group(const std::string& name_or_key) const {
  for (const PruneGroup& group : analysis_->groups) {
    if (group.key == name_or_key) return &group;
  }
  for (const PruneGroup& group : analysis_->groups) {
    if (group.name == name_or_key) return &group;
  }
  return nullptr;
}

const std::vector<std::string>& DependencyGraph::warnings() const { return analysis_->warnings; }
std::vector<FrozenNote> DependencyGraph::frozen_notes() const { return analysis_->frozen_notes; }
const torch::jit::Module& DependencyGraph::module() const { return analysis_->module; }
std::shared_ptr<torch::jit::Graph> DependencyGraph::graph() const { return analysis_->graph; }
const std::string& DependencyGraph::model_name() const { return analysis_->model_name; }
double DependencyGraph::seconds() const { return analysis_->seconds; }

Result<std::unique_ptr<DependencyGraph>> build_dependency_graph(const torch::jit::Module& module,
                                                                const std::vector<torch::jit::IValue>& inputs,
                                                                const DependencyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto analysis = std::make_unique<PruneAnalysis>();
  analysis->model_name = options.model_name;
  if (analysis->model_name.empty()) analysis->model_name = class_base_name(module.type());
  analysis->rules = options.rules != nullptr ? options.rules : &PruneRules::registered();
  analysis->module_rules = options.module_rules != nullptr ? options.module_rules : &ModuleRules::registered();
  const std::string what = "pruning " + analysis->model_name;
  try {
    if (!module.find_method("forward")) {
      return Status(ErrorCode::kInvalidArgument, what + ": the module has no forward method");
    }
    Result<torch::jit::Module> own_types = copy_with_own_types(module);
    if (own_types.is_ok()) {
      analysis->module = *own_types;
      analysis->module.eval();
      if (options.write_out_attention) {
        analysis->written_out_attention = write_out_self_attention(analysis->module, analysis->warnings);
      }
      analysis->origins = tag_method_nodes(analysis->module);
      analysis->graph = inline_forward(analysis->module);
    } else {
      analysis->inline_reason = own_types.status().message();
      analysis->module = module.deepcopy();
      analysis->module.eval();
      analysis->graph = analysis->module.get_method("forward").graph()->copy();
      torch::jit::Inline(*analysis->graph);
    }
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, what + ": cannot copy and inline the module: " + torch_error_reason(e));
  }
  PROFAGENT_RETURN_IF_ERROR(record_shapes(*analysis, inputs));
  Builder builder(*analysis);
  try {
    builder.specialise();
    builder.resolve_params();
    builder.apply_rules();
    builder.finish();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, what + ": building the dependency graph failed: " + torch_error_reason(e));
  }
  analysis->seconds = seconds_since(start);
  for (const std::string& warning : analysis->warnings) log().warn("{}: {}", what, warning);
  return std::unique_ptr<DependencyGraph>(new DependencyGraph(std::move(analysis)));
}

}  // namespace profagent::torch_tk

// PruneSession: the original measured once, then per round the graph built once; choose, estimate MACs,
// apply, verify (prune_session.hpp).
#include "profagent/prune/prune_session.hpp"

#include "profagent/clock.hpp"
#include "profagent/torch/errors.hpp"

namespace profagent::torch_tk {

Result<std::unique_ptr<PruneSession>> PruneSession::open(const torch::jit::Module& module,
                                                         std::vector<torch::jit::IValue> inputs,
                                                         DependencyOptions graph_options, bool profile) {
  std::unique_ptr<PruneSession> session(new PruneSession(module, std::move(inputs), std::move(graph_options)));
  const std::string& name = session->graph_options_.model_name;
  try {
    torch::NoGradGuard no_grad;
    torch::jit::Module copy = module.clone();
    copy.eval();
    session->expected_ = output_shapes(copy.forward(session->inputs_));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kRuntime, "pruning " + (name.empty() ? std::string("the model") : name) +
                                           ": the model's forward fails on the example input: " +
                                           torch_error_reason(e));
  }
  if (profile) {
    StaticProfileOptions profile_options;
    profile_options.model_name = name;
    PROFAGENT_ASSIGN_OR_RETURN(StaticProfile before, static_profile(module, session->inputs_, profile_options));
    session->before_ = std::move(before);
  }
  return session;
}

Result<PruneResult> PruneSession::round(PruneOptions options, const Chooser& choose) const {
  PROFAGENT_ASSIGN_OR_RETURN(std::unique_ptr<DependencyGraph> graph,
                             build_dependency_graph(module_, inputs_, graph_options_));
  PruneResult result;
  const std::string name = graph->model_name();
  result.graph_seconds = graph->seconds();
  result.warnings = graph->warnings();
  result.frozen = graph->frozen_notes();
  result.groups = static_cast<std::int64_t>(graph->groups().size());
  const auto start = SteadyClock::now();
  std::vector<GroupDecision> decisions;
  if (choose) {
    PROFAGENT_ASSIGN_OR_RETURN(decisions, choose(*graph, options));
  } else {
    PROFAGENT_ASSIGN_OR_RETURN(decisions, choose_units(*graph, options));
  }
  result.history.model = name;
  result.history.options = options.to_json();
  result.history.groups = decisions;
  for (const GroupDecision& decision : decisions) result.pruned_groups += decision.removed.empty() ? 0 : 1;
  PROFAGENT_ASSIGN_OR_RETURN(torch::jit::Module pruned, apply_pruning(*graph, decisions));
  graph.reset();
  PROFAGENT_ASSIGN_OR_RETURN(
      result.module,
      round_trip(pruned, options.verify ? inputs_ : std::vector<torch::jit::IValue>{}, expected_, name));
  result.prune_seconds = seconds_since(start);
  if (before_ && options.profile) {
    StaticProfileOptions profile_options;
    profile_options.model_name = name;
    PROFAGENT_ASSIGN_OR_RETURN(StaticProfile after, static_profile(result.module, inputs_, profile_options));
    result.params_before = before_->params;
    result.macs_before = before_->macs;
    result.params_after = after.params;
    result.macs_after = after.macs;
  }
  return result;
}

Result<PruneResult> prune(const torch::jit::Module& module, const std::vector<torch::jit::IValue>& inputs,
                          const PruneOptions& options, const DependencyOptions& graph_options) {
  PROFAGENT_ASSIGN_OR_RETURN(std::unique_ptr<PruneSession> session,
                             PruneSession::open(module, inputs, graph_options, options.profile));
  return session->round(options);
}

}  // namespace profagent::torch_tk

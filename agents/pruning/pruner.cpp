#include "pruner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "profagent/phases.hpp"
#include "profagent/clock.hpp"
#include "profagent/log.hpp"
#include "profagent/text.hpp"
#include "profagent/torch/dataset.hpp"
#include "profagent/profile/static_profile.hpp"
#include "profagent/prune/prune_session.hpp"

namespace profagent::agents {

namespace tk = torch_tk;

namespace {

using Clock = SteadyClock;

// ---- MAC estimate of a choice of units, without applying it ----
//
// A conv's or linear's MACs are (output positions) × (weight elements), and pruning channels leaves
// the positions alone, so a layer's MACs scale exactly with the share of its weight that is kept. The
// estimate scales every layer's MACs by the kept share of the largest parameter it owns (`weight`,
// a fused attention's `in_proj_weight`); layers without parameters (a decomposed attention's
// matmuls) keep theirs. Exact for CNNs; for attention the measured count after applying corrects it.
class MacEstimator {
 public:
  MacEstimator(const tk::StaticProfile& profile, const torch::jit::Module& module) : total_(profile.macs) {
    std::map<std::string, std::pair<std::string, std::int64_t>> largest;  // layer → (param, numel)
    for (const auto& parameter : module.named_parameters(/*recurse=*/true)) {
      shapes_[parameter.name] = parameter.value.sizes().vec();
      const auto dot = parameter.name.rfind('.');
      const std::string layer = dot == std::string::npos ? tk::kRootLayer : parameter.name.substr(0, dot);
      auto& best = largest[layer];
      if (parameter.value.numel() > best.second) best = {parameter.name, parameter.value.numel()};
    }
    std::int64_t scaled = 0;
    for (const auto& layer : profile.layers) {
      auto owner = largest.find(layer.name);
      if (layer.macs == 0 || owner == largest.end()) continue;
      terms_.push_back({owner->second.first, layer.macs});
      scaled += layer.macs;
    }
    fixed_ = total_ - scaled;
  }

  std::int64_t total() const { return total_; }

  std::int64_t estimate(const tk::DependencyGraph& graph, const std::vector<tk::GroupDecision>& decisions) const {
    std::map<std::string, std::map<std::int64_t, std::set<std::int64_t>>> removed;  // param → dim → indices
    for (const auto& decision : decisions) {
      const tk::PruneGroup* group = graph.find_group(decision.key);
      if (group == nullptr) continue;
      for (std::int64_t id : decision.removed) {
        auto at = std::find(group->unit_ids.begin(), group->unit_ids.end(), id);
        if (at == group->unit_ids.end()) continue;
        const auto unit = static_cast<std::size_t>(at - group->unit_ids.begin());
        for (const auto& member : group->members) {
          auto& indices = removed[member.param][member.dim];
          indices.insert(member.unit_indices[unit].begin(), member.unit_indices[unit].end());
        }
      }
    }
    double macs = static_cast<double>(fixed_);
    for (const Term& term : terms_) {
      double kept = 1.0;
      auto param = removed.find(term.param);
      auto shape = shapes_.find(term.param);
      if (param != removed.end() && shape != shapes_.end()) {
        for (const auto& [dim, indices] : param->second) {
          const auto d = static_cast<std::size_t>(dim < 0 ? dim + static_cast<std::int64_t>(shape->second.size()) : dim);
          if (d >= shape->second.size() || shape->second[d] == 0) continue;
          kept *= 1.0 - static_cast<double>(indices.size()) / static_cast<double>(shape->second[d]);
        }
      }
      macs += kept * static_cast<double>(term.macs);
    }
    return static_cast<std::int64_t>(std::llround(macs));
  }

 private:
  struct Term {
    std::string param;
    std::int64_t macs = 0;
  };
  std::int64_t total_ = 0;
  std::int64_t fixed_ = 0;  // MACs the estimate does not scale
  std::vector<Term> terms_;
  std::map<std::string, std::vector<std::int64_t>> shapes_;
};

double reduction_of(std::int64_t before, std::int64_t after) {
  return before > 0 ? 1.0 - static_cast<double>(after) / static_cast<double>(before) : 0.0;
}

// What the MAC-target search varies: one global ratio, or, with a plan, one factor that scales every
// ratio of the plan (its layers and its global ratio), so the plan's relative allocation is kept and
// only its size is searched — the same search a uniform ratio goes through.
struct SearchVariable {
  std::string name;  // "ratio" or "scale"
  double upper = 0.0;  // the reduction grows with the variable up to here
  std::function<void(double, tk::PruneOptions&)> set;
};

constexpr double kMaxSearchRatio = 0.95;

SearchVariable global_ratio_variable() {
  return {"ratio", kMaxSearchRatio, [](double ratio, tk::PruneOptions& options) { options.ratio = ratio; }};
}

// Every plan ratio times `scale`, capped at kMaxSearchRatio; the upper end is where the smallest
// non-zero plan ratio reaches the cap (every ratio capped: the most the plan can remove).
Result<SearchVariable> plan_scale_variable(const tk::PruneOptions& planned) {
  double smallest = planned.ratio > 0.0 ? planned.ratio : 1.0;
  for (const auto& [layer, ratio] : planned.layer_ratios)
    if (ratio > 0.0) smallest = std::min(smallest, ratio);
  if (planned.ratio <= 0.0 && std::none_of(planned.layer_ratios.begin(), planned.layer_ratios.end(),
                                           [](const auto& entry) { return entry.second > 0.0; })) {
    return Status(ErrorCode::kInvalidArgument,
                  "a MAC target scales the plan's ratios, but every ratio of the plan is 0 (nothing to scale)");
  }
  const std::map<std::string, double> layers = planned.layer_ratios;
  const double global = planned.ratio;
  return SearchVariable{"scale", kMaxSearchRatio / smallest, [layers, global](double scale, tk::PruneOptions& options) {
                          for (const auto& [layer, ratio] : layers)
                            options.layer_ratios[layer] = std::min(kMaxSearchRatio, scale * ratio);
                          options.ratio = std::min(kMaxSearchRatio, scale * global);
                        }};
}

// The smallest value of `variable` whose estimated MAC reduction reaches `target` (bisection: the
// reduction grows with it, in steps when round_to > 1). Each step is one choose_units, no apply.
// `options` are left as the value found sets them.
Result<double> search_target(const tk::DependencyGraph& graph, tk::PruneOptions& options,
                             const SearchVariable& variable, const MacEstimator& macs, double target, Json& steps,
                             const PruningHooks& hooks) {
  constexpr int kSteps = 24;
  auto reduction_at = [&](double value) -> Result<double> {
    variable.set(value, options);
    PROFAGENT_ASSIGN_OR_RETURN(auto decisions, tk::choose_units(graph, options));
    const double reduction = reduction_of(macs.total(), macs.estimate(graph, decisions));
    steps.push_back(Json{{variable.name, value}, {"estimated_reduction", reduction}});
    return reduction;
  };
  PROFAGENT_ASSIGN_OR_RETURN(double most, reduction_at(variable.upper));
  if (most < target) {
    return Status(ErrorCode::kInvalidArgument,
                  "macs_reduction " + std::to_string(target) + " cannot be reached: removing up to " +
                      std::to_string(kMaxSearchRatio) + " of " +
                      (variable.name == "ratio" ? "every prunable group's" : "the planned groups'") +
                      " units removes only " + std::to_string(most) +
                      " of the MACs (frozen and ignored layers keep the rest)");
  }
  double lo = 0.0, hi = variable.upper;
  for (int step = 0; step < kSteps && hi - lo > 1e-4 * variable.upper; ++step) {
    if (hooks.cancelled && hooks.cancelled()) return cancelled_status("pruning", "while searching the MAC target");
    if (hooks.progress) hooks.progress("search", step + 1, kSteps);
    const double mid = 0.5 * (lo + hi);
    PROFAGENT_ASSIGN_OR_RETURN(double reduction, reduction_at(mid));
    (reduction >= target ? hi : lo) = mid;
  }
  variable.set(hi, options);
  return hi;
}

struct Attempt {
  tk::PruneResult result;
  double ratio = 0.0;
  std::optional<double> scale;  // the factor on the plan's ratios (a MAC target with a plan)
  double estimated_reduction = 0.0;
};

}  // namespace

// ---- options ----

Json PruningOptions::to_json() const {
  Json json{{"ratio", ratio},
            {"criterion", criterion},
            {"reduction", tk::to_string(reduction)},
            {"round_to", round_to},
            {"min_width", min_width},
            {"ignored_layers", ignored_layers},
            {"ignore_input_layer", ignore_input_layer},
            {"fused_attention", fused_attention}};
  if (macs_reduction) json["macs_reduction"] = *macs_reduction;
  if (!calibration.is_null()) {
    json["calibration"] = Json{{"samples", calibration_samples}, {"batch_size", calibration_batch_size}, {"seed", seed}};
  }
  return json;
}

const OptionsSchema<PruningOptions>& pruning_options_schema() {
  static const OptionsSchema<PruningOptions> schema = [] {
    using O = PruningOptions;
    OptionsSchema<O> s;
    s.field("ratio", &O::ratio)
        .min(0.0)
        .max(0.95)
        .describe("share of every prunable group's units (channels, hidden units, heads) to remove; a plan's "
                  "global_ratio replaces it, its layers override it per layer");
    s.field("macs_reduction", &O::macs_reduction)
        .min(0.0)
        .max(0.95)
        .describe("share of the model's MACs to remove (0.2: 20% fewer); the global ratio is searched to reach "
                  "at least this, and `ratio` is ignored; with a plan that names layers, one factor on every plan "
                  "ratio is searched instead (the plan's allocation kept, its size scaled)");
    s.field("macs_tolerance", &O::macs_tolerance)
        .min(0.0)
        .describe("how far the measured MAC reduction may be from the estimate before the search is corrected");
    s.field("criterion", &O::criterion)
        .names_provider(tk::kImportanceInterface)
        .describe("the importance provider that ranks units: l1, l2, bn_scale, random, taylor (needs calibration)");
    s.field("criterion_config", &O::criterion_config)
        .configures_provider("criterion")
        .describe("the criterion provider's own config (e.g. {normalize: max})");
    s.field_with("reduction", ConfigType::kEnum,
                 [](const Json& value, O& options) -> Status {
                   PROFAGENT_ASSIGN_OR_RETURN(options.reduction, tk::parse_group_reduction(value.get<std::string>()));
                   return Status::ok();
                 })
        .choices({"mean", "sum", "max"})
        .default_value(tk::to_string(O{}.reduction))
        .describe("how a group's members' scores of a unit combine");
    s.field("round_to", &O::round_to).min(1).describe("kept units: a multiple of this (e.g. 8)");
    s.field("min_width", &O::min_width).min(1).describe("kept units: at least this many");
    s.field("ignored_layers", &O::ignored_layers).describe("layers (module paths) or group keys never pruned");
    s.field("ignore_input_layer", &O::ignore_input_layer)
        .describe("leave the layer that reads the model input (first conv, patch embedding) alone; for a "
                  "transformer that group is the embedding (residual) width");
    s.field("fused_attention", &O::fused_attention)
        .describe("keep nn.MultiheadAttention's fused kernel, whose heads can only go with the residual channels "
                  "they read (embedding pruning); default false: the attention is written out, whole heads go, "
                  "the embedding width stays");
    s.field("calibration", &O::calibration)
        .names_provider(tk::kDatasetInterface)
        .describe("data for gradient criteria (taylor): {format: idx|cifar|image_folder, ...that provider's "
                  "config}, like the evaluation's `dataset`; an empty map means none");
    s.field("calibration_samples", &O::calibration_samples)
        .min(1)
        .describe("samples of the calibration set (a fixed-seed subset) the gradients are averaged over");
    s.field("calibration_batch_size", &O::calibration_batch_size).min(1).describe("samples per batch");
    s.field("seed", &O::seed).min(0).describe("seed of the calibration subset");
    return s;
  }();
  return schema;
}

// ---- criteria ----

tk::PruneCriterion make_prune_criterion(tk::ImportanceCriterion& criterion,
                                        std::shared_ptr<const tk::GradientMap> gradients, const PruningHooks& hooks) {
  auto cache = std::make_shared<std::map<std::string, torch::Tensor>>();
  return [&criterion, gradients, cache, hooks](const tk::ImportanceGroup& group,
                                               tk::GroupReduction reduction) -> Result<torch::Tensor> {
    // A group is identified by its members' parameters and dims (names alone may repeat).
    std::string key = group.name + "|" + std::to_string(group.units) + "|" + tk::to_string(reduction);
    for (const auto& member : group.members) key += "|" + member.param + ":" + std::to_string(member.dim);
    auto hit = cache->find(key);
    if (hit != cache->end()) return hit->second;
    if (hooks.cancelled && hooks.cancelled()) return cancelled_status("pruning", "while scoring '" + group.name + "'");
    tk::ImportanceGroup scored = group;
    if (gradients) {
      PROFAGENT_RETURN_IF_ERROR(tk::attach_gradients(scored, *gradients));
    }
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor scores, criterion.score(scored, reduction));
    cache->emplace(key, scores);
    if (hooks.progress) hooks.progress("group", static_cast<long>(cache->size()), 0);
    return scores;
  };
}

Result<tk::GradientMap> calibration_gradients(const torch::jit::Module& model, tk::Dataset& dataset,
                                              const PruningOptions& options, const PruningHooks& hooks) {
  const auto indices = tk::calibration_indices(dataset.info().size, options.calibration_samples, options.seed);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  const auto size = static_cast<std::int64_t>(indices.size());
  const long total = static_cast<long>((size + options.calibration_batch_size - 1) / options.calibration_batch_size);
  for (std::int64_t start = 0; start < size; start += options.calibration_batch_size) {
    if (hooks.cancelled && hooks.cancelled()) return cancelled_status("pruning", "while reading calibration data");
    std::vector<std::int64_t> chunk(indices.begin() + start,
                                    indices.begin() + std::min(size, start + options.calibration_batch_size));
    tk::Batch batch;  // a fresh one each time: read_batch reuses a batch's tensors
    PROFAGENT_RETURN_IF_ERROR(dataset.read_batch(chunk, batch));
    batches.emplace_back(batch.images, batch.labels);
    if (hooks.progress) hooks.progress("calibration batch", static_cast<long>(batches.size()), total);
  }
  // compute_gradients restores what it touches, but the model may be a shared artifact: use a copy.
  torch::jit::Module copy;
  {
    torch::NoGradGuard no_grad;
    copy = model.clone();
  }
  auto gradients = tk::compute_gradients(copy, batches);
  if (!gradients) {
    return std::move(gradients).take_status().with_context("computing gradients on " + std::to_string(size) +
                                                           " calibration samples of " + dataset.info().source);
  }
  return std::move(gradients).value();
}

// ---- the run ----

Json PruningOutcome::history_document() const {
  Json json = result.history.to_json();
  json["mode"] = mode;
  json["ratio"] = ratio;
  json["result"] = result.summary();
  json["result"]["macs_reduction"] = reduction_of(result.macs_before, result.macs_after);
  json["result"]["params_reduction"] = reduction_of(result.params_before, result.params_after);
  if (!search.is_null()) json["search"] = search;
  return json;
}

Result<PruningOutcome> run_pruning(const PruningRequest& request, const PruningOptions& options,
                                   const PruningHooks& hooks) {
  spdlog::logger& log = hooks.log ? *hooks.log : profagent::log();
  if (request.model == nullptr) return Status(ErrorCode::kInvalidArgument, "no model to prune");
  const std::string& name = request.model_name;
  torch::NoGradGuard no_grad;

  tk::DependencyOptions graph_options;
  graph_options.model_name = name;
  graph_options.write_out_attention = !options.fused_attention;

  // The engine's options: the stage's config, then the plan, or the replayed history alone.
  tk::PruneOptions base;
  PruningOutcome outcome;
  if (request.replay) {
    base = request.replay->replay_options();
    outcome.mode = "replay";
  } else {
    base.ratio = options.ratio;
    base.round_to = options.round_to;
    base.min_width = options.min_width;
    base.ignored_layers = options.ignored_layers;
    base.ignore_input_layer = options.ignore_input_layer;
    base.reduction = options.reduction;
    base.criterion = request.criterion;
    outcome.mode = "ratio";
    if (request.plan) {
      base.layer_ratios = request.plan->layers;
      if (request.plan->global_ratio) base.ratio = *request.plan->global_ratio;
      base.ignored_layers.insert(base.ignored_layers.end(), request.plan->ignored_layers.begin(),
                                 request.plan->ignored_layers.end());
      outcome.mode = "plan";
    }
    if (options.macs_reduction) outcome.mode = "macs_target";
  }
  base.verify = true;
  base.profile = true;

  // Opening runs the model once on a copy (the shapes to verify against) and profiles it (MACs before).
  auto opening = phase_if(hooks.phases, "open (reference forward, static profile)");
  PROFAGENT_ASSIGN_OR_RETURN(std::unique_ptr<tk::PruneSession> session,
                             tk::PruneSession::open(*request.model, request.inputs, graph_options));
  opening.reset();

  std::vector<std::string> module_paths;
  for (const auto& module : request.model->named_modules()) module_paths.push_back(module.name);

  // One round of the engine's session, choosing units our way: the plan's layers checked against
  // the graph, the ratio searched when a MAC target is set, the MAC estimate of the choice kept.
  auto attempt = [&](double target_estimate, Json* search_steps) -> Result<Attempt> {
    // A round: the dependency graph, the choice, the edit, the save-and-load check and the MACs after.
    auto round = phase_if(hooks.phases, "prune round (graph, choose, apply, verify)");
    Attempt out;
    auto choose = [&](const tk::DependencyGraph& graph,
                      tk::PruneOptions& chosen) -> Result<std::vector<tk::GroupDecision>> {
      if (request.plan && !request.replay) {
        PROFAGENT_RETURN_IF_ERROR(check_plan_layers(*request.plan, graph, module_paths, name));
      }
      MacEstimator estimator(*session->before(), graph.module());
      if (options.macs_reduction && !request.replay) {
        SearchVariable variable = global_ratio_variable();
        if (request.plan && !request.plan->layers.empty()) {
          PROFAGENT_ASSIGN_OR_RETURN(variable, plan_scale_variable(chosen));
        }
        PROFAGENT_ASSIGN_OR_RETURN(double found, search_target(graph, chosen, variable, estimator, target_estimate,
                                                               *search_steps, hooks));
        if (variable.name == "scale") out.scale = found;
      }
      if (hooks.cancelled && hooks.cancelled()) return cancelled_status("pruning", "before choosing units");
      PROFAGENT_ASSIGN_OR_RETURN(std::vector<tk::GroupDecision> decisions, tk::choose_units(graph, chosen));
      out.ratio = chosen.ratio;
      out.estimated_reduction = reduction_of(estimator.total(), estimator.estimate(graph, decisions));
      return decisions;
    };
    PROFAGENT_ASSIGN_OR_RETURN(out.result, session->round(base, choose));
    if (!request.replay) {
      out.result.history.options["criterion"] = request.criterion ? options.criterion : std::string("l1");
    }
    return out;
  };

  const auto start = Clock::now();
  if (!options.macs_reduction || request.replay) {
    PROFAGENT_ASSIGN_OR_RETURN(Attempt only, attempt(0.0, nullptr));
    outcome.result = std::move(only.result);
    outcome.ratio = only.ratio;
    return outcome;
  }

  // MAC target: search on the estimate, apply, measure; where the estimate was off (attention), aim
  // the next search at the target plus the error seen, at most kRounds times, keeping the closest.
  constexpr int kRounds = 3;
  const double target = *options.macs_reduction;
  double aim = target;
  Json rounds = Json::array();
  std::optional<Attempt> best;
  for (int round = 0; round < kRounds; ++round) {
    Json steps = Json::array();
    PROFAGENT_ASSIGN_OR_RETURN(Attempt current, attempt(aim, &steps));
    const double measured = reduction_of(current.result.macs_before, current.result.macs_after);
    const double error = current.estimated_reduction - measured;
    log.info("MAC target {:.3f}: ratio {:.4f} removes {:.4f} of the MACs (estimated {:.4f})", target, current.ratio,
             measured, current.estimated_reduction);
    Json round_json{{"aim", aim},
                          {"ratio", current.ratio},
                          {"estimated_reduction", current.estimated_reduction},
                          {"measured_reduction", measured},
                          {"choices", steps.size()},
                          {"steps", std::move(steps)}};
    if (current.scale) round_json["plan_scale"] = *current.scale;
    rounds.push_back(std::move(round_json));
    const bool closer = !best || std::abs(measured - target) <
                                     std::abs(reduction_of(best->result.macs_before, best->result.macs_after) - target);
    if (closer) best = std::move(current);
    if (std::abs(error) <= options.macs_tolerance) break;
    aim = std::clamp(target + error, 0.0, 0.95);
  }
  outcome.result = std::move(best->result);
  outcome.ratio = best->ratio;
  outcome.search = Json{{"target", target},
                        {"achieved", reduction_of(outcome.result.macs_before, outcome.result.macs_after)},
                        {"rounds", std::move(rounds)},
                        {"seconds", seconds_since(start)}};
  return outcome;
}

}  // namespace profagent::agents

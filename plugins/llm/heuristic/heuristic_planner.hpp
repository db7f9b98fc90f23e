#pragma once
// The embedded planner: a deterministic allocation of per-group pruning ratios (and per-layer
// quantization schemes) from the analysis agent's evidence, answered in the LLM-facing reply schema
// so that its answer goes through the same validation as a vendor model's. No LibTorch, no I/O: the
// `heuristic` backend (heuristic_backend.cpp) and the agent's fallback both call plan_from_evidence.
//
// Evidence (what the analysis agent builds; docs/analysis.md, "Evidence"), the fields read here:
//   task                         "prune" | "quantize" | "both"
//   constraints.macs_reduction   share of the MACs to remove (null: none)
//   constraints.latency_reduction  share of the latency to remove (null: none)
//   constraints.max_ratio        the cap on any group's ratio
//   constraints.schemes          quantization schemes the plan may use
//   groups[] {layer, units, producers, macs_share, latency_share, bound, sensitivity?}
//        sensitivity: {probe_ratio, loss_increase, accuracy_drop} measured with that group alone
//        pruned at probe_ratio (null without a calibration set)
//   layers[] {name, kind, params_share, latency_share, bound, reads_input, is_output}  (quantize/both)
//
// The algorithm (docs/analysis.md, "The heuristic planner"):
//   benefit b_g  = w · macs_share + (1 − w) · latency_share · bound_factor   (w = 0.7 for a MAC
//                  budget, 0.3 for a latency budget; bound_factor 1 compute-bound, 0.5 memory-bound:
//                  a memory-bound layer's time is partly reading its input, which its own
//                  channels do not shrink)
//   damage d_g(r) = s_g · r², with s_g = loss_increase / probe² when measured (the one-shot
//                  sensitivity; floored at 2% of the median so no group is free), else a proxy:
//                  producers · sqrt(64 / units) (coupled residual streams and narrow groups hurt more)
//   minimise Σ d_g(r_g) subject to Σ r_g · cost_g ≥ target  →  r_g = min(max_ratio, λ · b_g / s_g)
//                  with λ found by bisection so the first-order estimate Σ r_g · cost_g meets the
//                  budget (cost = macs_share for a MAC budget, latency_share for a latency budget;
//                  both: the larger λ). Ratios under 0.01 become 0 (the group is kept).
//   quantization: Linear layers holding ≥ 1% of the parameters → int8_dynamic; conv layers with ≥ 2%
//                  of the latency → int8_static; the layer reading the input and the output layer →
//                  none (the most sensitive to rounding); schemes not in constraints.schemes are skipped.
#include <string>

#include "profagent/json.hpp"
#include "profagent/status.hpp"

namespace profagent::heuristic {

// The MAC reduction a plan aims at when the constraints give no budget.
inline constexpr double kDefaultMacsReduction = 0.2;

// The reply, in the LLM-facing schema: {"layers": [{layer, action, ratio, scheme, reason}], "summary"}.
// Errors (kValidation) name a missing or malformed evidence field.
Result<Json> plan_from_evidence(const Json& evidence);

}  // namespace profagent::heuristic

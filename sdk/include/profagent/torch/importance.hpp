#pragma once
// Importance criteria are providers of interface "importance" (plugins/importance/): they score the
// removable units (channels, hidden units, heads) of one pruning group, and the pruner removes the
// lowest-scoring ones. An agent gets one with
//   context.make_provider_as<profagent::torch_tk::ImportanceCriterion>("importance", "l1", config)
// The shared helpers below (validation, per-member unit sums, reduction over members, normalisation)
// are what every first-party criterion is built from, so a third-party criterion only writes how one
// member scores its units. The header pulls in only ATen's Tensor (every Tensor method, a few seconds to
// compile), not <torch/torch.h>: a criterion that calls free functions includes their <ATen/ops/*.h>.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "profagent/provider.hpp"
#include "profagent/status.hpp"

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace profagent::torch_tk {

constexpr const char* kImportanceInterface = "importance";

// ImportanceMember::role values. "norm" is the scale γ of a batch/layer/group norm; its shift β is a
// "bias" and its running statistics are "buffer" (never scored). A "norm" member whose parameter name
// ends in ".bias" is read as "bias", one ending in ".running_mean"/".running_var" as "buffer", so a
// graph that labels every norm vector "norm" is still scored as documented (see effective_role).
constexpr const char* kRoleProducer = "producer";  // output dim of a conv/linear weight (dim 0)
constexpr const char* kRoleConsumer = "consumer";  // input dim of a conv/linear weight (dim 1)
constexpr const char* kRoleNorm = "norm";          // BN/LN/GN affine scale γ
constexpr const char* kRoleBias = "bias";          // conv/linear bias, norm shift β
constexpr const char* kRoleOther = "other";        // class token, position embedding, ...
constexpr const char* kRoleBuffer = "buffer";      // running_mean/var: moved with the unit, never scored

struct ImportanceMember {
  std::string param;     // "layer1.0.conv1.weight"
  at::Tensor weight;  // the parameter (or buffer) tensor
  at::Tensor grad;    // its gradient from a calibration batch; undefined when none
  std::int64_t dim = 0;  // the dim the units index (negative counts from the end, like torch)
  // Per unit, its indices along `dim`: a channel owns one row of its producer, a head a block of
  // rows, a flattened channel H·W consecutive input features of the next linear. An empty list means
  // the member has nothing of that unit (it is then left out of that unit's reduction).
  std::vector<std::vector<std::int64_t>> unit_indices;
  std::string role;         // kRole* above
  std::string module_kind;  // "conv", "linear", "batch_norm", "layer_norm", "group_norm", ...
};

struct ImportanceGroup {
  std::string name;  // the layer a plan names, e.g. "layer1.0.conv1"
  std::int64_t units = 0;
  std::vector<ImportanceMember> members;
};

// How the members' per-unit scores combine into the group's score of a unit (Torch-Pruning's
// group_reduction): the mean or sum over the members that have indices for that unit, or their max.
enum class GroupReduction { kMean, kSum, kMax };
Result<GroupReduction> parse_group_reduction(const std::string& text);  // "mean" | "sum" | "max"
const char* to_string(GroupReduction reduction);

class ImportanceCriterion : public Provider {  // interface "importance"
 public:
  // True when score() reads ImportanceMember::grad (see compute_gradients and attach_gradients).
  virtual bool needs_gradients() const { return false; }
  // One score per unit (shape [units], float64 or float32, >= 0), higher = more important.
  virtual Result<at::Tensor> score(const ImportanceGroup& group, GroupReduction reduction) = 0;
};

// ---- Helpers for criteria (and for the pruner, to check what a third-party criterion returned) ----

// The role a member is scored as: its `role`, except the norm vectors named above.
std::string effective_role(const ImportanceMember& member);

// Checks the group's structure: units > 0, at least one member, every member's weight defined,
// dim in range, unit_indices.size() == units, every index within the dim, grad (when defined) of the
// weight's shape; and, when `require_gradients`, a defined grad on every member whose effective role
// is in `gradient_roles`. Messages name the group, the parameter and the unit.
Status validate_group(const ImportanceGroup& group, bool require_gradients = false,
                      const std::vector<std::string>& gradient_roles = {});

// Checks a criterion's answer: shape [group.units], floating point, finite, >= 0.
Status validate_scores(const ImportanceGroup& group, const at::Tensor& scores);

// Σ of `values` (shaped like the member's weight) over every dim except `dim`: [size(dim)] float64.
at::Tensor sum_over_other_dims(const at::Tensor& values, std::int64_t dim);

// Per-index values of a member ([size(dim)]) summed into its units: [units] float64. Call on a
// validated group (indices are not checked again).
at::Tensor sum_into_units(const at::Tensor& per_index, const ImportanceMember& member,
                             std::int64_t units);

// How one member scores the group's units: [units], >= 0 (0 for units it has no index of).
using MemberScorer = std::function<Result<at::Tensor>(const ImportanceMember& member, std::int64_t units)>;

// Validates the group, scores every member whose effective role is in `roles` with `scorer`, and
// reduces them per unit over the members that have indices for it. Members are not normalised one by
// one (Torch-Pruning's GroupMagnitudeImportance): a member weighs in by its size, so a conv's weight
// counts for more than its BN's γ. Fails with kUnsupported, naming the group and its members, when
// no member has one of `roles`.
// Returns [units] float64.
Result<at::Tensor> reduce_members(const ImportanceGroup& group, GroupReduction reduction,
                                     const std::vector<std::string>& roles, const MemberScorer& scorer,
                                     bool require_gradients = false);

// Scales a group's final scores so that groups of different sizes and layers compare in a global
// ranking (Torch-Pruning's normalizer): none, or divided by their mean, max or sum. All-zero scores
// stay zero. The order of units within a group never changes.
enum class ScoreNormalization { kNone, kMean, kMax, kSum };
Result<ScoreNormalization> parse_score_normalization(const std::string& text);  // "none"|"mean"|"max"|"sum"
const char* to_string(ScoreNormalization normalization);
at::Tensor normalize_scores(const at::Tensor& scores, ScoreNormalization normalization);

// ---- Gradients for gradient-based criteria (Taylor) ----

// Parameter name (module.named_parameters(), e.g. "layer1.0.conv1.weight") → its gradient.
using GradientMap = std::map<std::string, at::Tensor>;

// Gradients of the mean over `batches` of each batch's mean cross-entropy of the logits, for every
// parameter of `module` (scripted or traced). Each batch is (inputs [N, ...], integer labels [N]);
// the model's output must be logits [N, classes]. Runs in eval mode, so BatchNorm uses and keeps its
// running statistics, with autograd on whatever the caller's grad mode. The module is left as found:
// training flags, requires_grad, existing .grad() and buffers are restored (buffers matter for a
// model traced in training mode, whose graph updates BN statistics whatever eval() says; that case is
// logged). A parameter the loss does not reach gets a zero gradient.
Result<GradientMap> compute_gradients(torch::jit::Module& module,
                                      const std::vector<std::pair<at::Tensor, at::Tensor>>& batches);

// Sets every member's grad from `gradients` by its `param`, except members of role "buffer" (running
// statistics have no gradient); fails naming the group and parameter when one is missing.
Status attach_gradients(ImportanceGroup& group, const GradientMap& gradients);

}  // namespace profagent::torch_tk

#include "profagent/torch/importance.hpp"
#include "profagent/torch/model_io.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace profagent::torch_tk {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string where(const ImportanceGroup& group, const ImportanceMember& member) {
  return "group '" + group.name + "': member '" + member.param + "'";
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

Status check_member(const ImportanceGroup& group, const ImportanceMember& member) {
  if (!member.weight.defined())
    return Status(ErrorCode::kInvalidArgument, where(group, member) + " has no tensor");
  const std::int64_t rank = member.weight.dim();
  if (rank == 0 || member.dim < -rank || member.dim >= rank)
    return Status(ErrorCode::kInvalidArgument, where(group, member) + ": dim " + std::to_string(member.dim) +
                                                   " is out of range for shape " +
                                                   shape_text(member.weight.sizes()));
  if (static_cast<std::int64_t>(member.unit_indices.size()) != group.units)
    return Status(ErrorCode::kInvalidArgument, where(group, member) + " has indices for " +
                                                   std::to_string(member.unit_indices.size()) +
                                                   " units, the group has " + std::to_string(group.units));
  const std::int64_t size = member.weight.size(member.dim);
  for (std::size_t unit = 0; unit < member.unit_indices.size(); ++unit)
    for (std::int64_t index : member.unit_indices[unit])
      if (index < 0 || index >= size)
        return Status(ErrorCode::kInvalidArgument,
                      where(group, member) + ": unit " + std::to_string(unit) + " has index " +
                          std::to_string(index) + ", outside [0, " + std::to_string(size) + ") of dim " +
                          std::to_string(member.dim) + " of shape " + shape_text(member.weight.sizes()));
  if (member.grad.defined() && member.grad.sizes() != member.weight.sizes())
    return Status(ErrorCode::kInvalidArgument,
                  where(group, member) + ": gradient of shape " + shape_text(member.grad.sizes()) +
                      " for a tensor of shape " + shape_text(member.weight.sizes()));
  return Status::ok();
}

}  // namespace

Result<GroupReduction> parse_group_reduction(const std::string& text) {
  if (text == "mean") return GroupReduction::kMean;
  if (text == "sum") return GroupReduction::kSum;
  if (text == "max") return GroupReduction::kMax;
  return Status(ErrorCode::kInvalidArgument,
                "group reduction must be one of mean, sum, max, not '" + text + "'");
}

const char* to_string(GroupReduction reduction) {
  switch (reduction) {
    case GroupReduction::kMean:
      return "mean";
    case GroupReduction::kSum:
      return "sum";
    case GroupReduction::kMax:
      return "max";
  }
  return "?";
}

std::string effective_role(const ImportanceMember& member) {
  if (member.role == kRoleNorm) {
    if (ends_with(member.param, ".bias")) return kRoleBias;
    if (ends_with(member.param, ".running_mean") || ends_with(member.param, ".running_var"))
      return kRoleBuffer;
  }
  return member.role;
}

Status validate_group(const ImportanceGroup& group, bool require_gradients,
                      const std::vector<std::string>& gradient_roles) {
  if (group.units <= 0)
    return Status(ErrorCode::kInvalidArgument,
                  "group '" + group.name + "' has " + std::to_string(group.units) + " units");
  if (group.members.empty())
    return Status(ErrorCode::kInvalidArgument, "group '" + group.name + "' has no members");
  for (const ImportanceMember& member : group.members) {
    PROFAGENT_RETURN_IF_ERROR(check_member(group, member));
    if (require_gradients && !member.grad.defined() && contains(gradient_roles, effective_role(member)))
      return Status(ErrorCode::kInvalidArgument,
                    where(group, member) +
                        " has no gradient: compute gradients on a calibration batch "
                        "(compute_gradients, attach_gradients) before scoring");
  }
  return Status::ok();
}

Status validate_scores(const ImportanceGroup& group, const torch::Tensor& scores) {
  const std::string what = "scores of group '" + group.name + "'";
  if (!scores.defined()) return Status(ErrorCode::kValidation, what + " are undefined");
  if (scores.dim() != 1 || scores.size(0) != group.units)
    return Status(ErrorCode::kValidation, what + " have shape " + shape_text(scores.sizes()) +
                                              ", expected [" + std::to_string(group.units) + "]");
  if (!scores.is_floating_point()) return Status(ErrorCode::kValidation, what + " are not floating point");
  if (!torch::isfinite(scores).all().item<bool>())
    return Status(ErrorCode::kValidation, what + " are not all finite");
  if ((scores < 0).any().item<bool>()) return Status(ErrorCode::kValidation, what + " have negative values");
  return Status::ok();
}

torch::Tensor sum_over_other_dims(const torch::Tensor& values, std::int64_t dim) {
  const std::int64_t rank = values.dim();
  const std::int64_t kept = dim < 0 ? dim + rank : dim;
  // Moving the kept dim first makes one reshape + sum cover every rank, including 1-D vectors.
  torch::Tensor moved = values.to(torch::kFloat64).movedim(kept, 0);
  return moved.reshape({moved.size(0), -1}).sum(1);
}

torch::Tensor sum_into_units(const torch::Tensor& per_index, const ImportanceMember& member,
                             std::int64_t units) {
  std::vector<std::int64_t> indices;
  std::vector<std::int64_t> owners;
  for (std::size_t unit = 0; unit < member.unit_indices.size(); ++unit)
    for (std::int64_t index : member.unit_indices[unit]) {
      indices.push_back(index);
      owners.push_back(static_cast<std::int64_t>(unit));
    }
  torch::Tensor out = torch::zeros({units}, torch::kFloat64);
  if (indices.empty()) return out;
  const auto options = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor index = torch::tensor(indices, options);
  torch::Tensor owner = torch::tensor(owners, options);
  return out.index_add_(0, owner, per_index.to(torch::kFloat64).index_select(0, index));
}

Result<torch::Tensor> reduce_members(const ImportanceGroup& group, GroupReduction reduction,
                                     const std::vector<std::string>& roles, const MemberScorer& scorer,
                                     bool require_gradients) {
  PROFAGENT_RETURN_IF_ERROR(validate_group(group, require_gradients, roles));
  torch::Tensor total = torch::zeros({group.units}, torch::kFloat64);
  torch::Tensor count = torch::zeros({group.units}, torch::kFloat64);
  int scored = 0;
  for (const ImportanceMember& member : group.members) {
    if (!contains(roles, effective_role(member))) continue;
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor local, scorer(member, group.units));
    if (!local.defined() || local.dim() != 1 || local.size(0) != group.units)
      return Status(ErrorCode::kInternal, where(group, member) + ": the criterion scored " +
                                              (local.defined() ? shape_text(local.sizes()) : "nothing") +
                                              ", expected [" + std::to_string(group.units) + "]");
    local = local.to(torch::kFloat64);
    std::vector<double> has_unit(member.unit_indices.size());
    for (std::size_t unit = 0; unit < has_unit.size(); ++unit)
      has_unit[unit] = !member.unit_indices[unit].empty();
    torch::Tensor covered = torch::tensor(has_unit, torch::kFloat64);
    // Units the member has no index of must not pull a mean down or win a max.
    local = local * covered;
    if (reduction == GroupReduction::kMax)
      total = torch::maximum(total, local);
    else
      total += local;
    count += covered;
    ++scored;
  }
  if (scored == 0) {
    std::vector<std::string> present;
    for (const ImportanceMember& member : group.members)
      present.push_back(member.param + " (" + effective_role(member) + ")");
    // kUnsupported: the criterion cannot rank this group; a pruner may exclude it (as Torch-Pruning
    // skips a group its importance returns nothing for) or stop when the plan targets it.
    return Status(ErrorCode::kUnsupported, "group '" + group.name + "' has no member of role " + join(roles) +
                                               " to score; its members: " + join(present));
  }
  if (reduction == GroupReduction::kMean) total = total / count.clamp_min(1.0);
  return total;
}

Result<ScoreNormalization> parse_score_normalization(const std::string& text) {
  if (text == "none") return ScoreNormalization::kNone;
  if (text == "mean") return ScoreNormalization::kMean;
  if (text == "max") return ScoreNormalization::kMax;
  if (text == "sum") return ScoreNormalization::kSum;
  return Status(ErrorCode::kInvalidArgument,
                "score normalization must be one of none, mean, max, sum, not '" + text + "'");
}

const char* to_string(ScoreNormalization normalization) {
  switch (normalization) {
    case ScoreNormalization::kNone:
      return "none";
    case ScoreNormalization::kMean:
      return "mean";
    case ScoreNormalization::kMax:
      return "max";
    case ScoreNormalization::kSum:
      return "sum";
  }
  return "?";
}

torch::Tensor normalize_scores(const torch::Tensor& scores, ScoreNormalization normalization) {
  if (normalization == ScoreNormalization::kNone || scores.numel() == 0) return scores;
  torch::Tensor scale;
  switch (normalization) {
    case ScoreNormalization::kMean:
      scale = scores.mean();
      break;
    case ScoreNormalization::kMax:
      scale = scores.max();
      break;
    case ScoreNormalization::kSum:
      scale = scores.sum();
      break;
    case ScoreNormalization::kNone:
      return scores;
  }
  const double value = scale.item<double>();
  return value > 0 ? scores / value : scores;
}

Status attach_gradients(ImportanceGroup& group, const GradientMap& gradients) {
  for (ImportanceMember& member : group.members) {
    if (effective_role(member) == kRoleBuffer) continue;
    auto found = gradients.find(member.param);
    if (found == gradients.end())
      return Status(ErrorCode::kNotFound,
                    where(group, member) + " has no gradient: the model has no parameter of that name");
    member.grad = found->second;
  }
  return Status::ok();
}

}  // namespace profagent::torch_tk

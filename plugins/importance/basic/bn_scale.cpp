// bn_scale: |γ| of the group's norm members (Network Slimming; Torch-Pruning's BNScaleImportance,
// which also counts layer and group norms here). A group without a norm has no γ to read: that is an
// error naming the group (kUnsupported, so a pruner can exclude the group like Torch-Pruning does),
// never a silent fallback to another criterion, whose values would not compare with γ in a global
// ranking.
#include <memory>
#include <string>
#include <utility>

#include "criteria.hpp"

namespace profagent::importance {

namespace {

class BnScaleCriterion : public torch_tk::ImportanceCriterion {
 public:
  explicit BnScaleCriterion(CommonOptions options) : options_(std::move(options)) {}

  Result<torch::Tensor> score(const torch_tk::ImportanceGroup& group,
                              torch_tk::GroupReduction reduction) override {
    torch::NoGradGuard no_grad;
    auto member_score = [](const torch_tk::ImportanceMember& member,
                           std::int64_t units) -> Result<torch::Tensor> {
      torch::Tensor gamma = member.weight.detach().to(torch::kFloat64).abs();
      return torch_tk::sum_into_units(torch_tk::sum_over_other_dims(gamma, member.dim), member, units);
    };
    auto scores = torch_tk::reduce_members(group, reduction, {torch_tk::kRoleNorm}, member_score);
    if (!scores && scores.status().code() == ErrorCode::kUnsupported)
      return Status(ErrorCode::kUnsupported,
                    "bn_scale: " + scores.status().message() +
                        ". It has no BatchNorm/LayerNorm/GroupNorm scale to read: score "
                        "it with l1 or l2, or leave it out of the plan");
    PROFAGENT_RETURN_IF_ERROR(scores.status());
    return torch_tk::normalize_scores(scores.value(), options_.normalization);
  }

 private:
  CommonOptions options_;
};

}  // namespace

ProviderFactory make_bn_scale_factory() {
  ProviderFactory factory;
  factory.id = "bn_scale";
  factory.interface = torch_tk::kImportanceInterface;
  factory.summary = "|γ| of the group's BatchNorm/LayerNorm/GroupNorm scale (Network Slimming)";
  static const OptionsSchema<CommonOptions> schema = [] {
    OptionsSchema<CommonOptions> s;
    add_common_fields(s, /*with_roles=*/false);  // scores the norm members alone
    return s;
  }();
  bind_provider_options<BnScaleCriterion>(factory, schema);
  return factory;
}

}  // namespace profagent::importance

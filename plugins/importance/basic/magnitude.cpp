// l1 and l2: the magnitude of each unit's weights in every counted member (Torch-Pruning's
// GroupMagnitudeImportance with p = 1 and p = 2): Σ|w| and Σw² over the unit's slices, reduced over
// the members. l2 is the squared norm, as there, so that per-member sums add up without a root.
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "criteria.hpp"

namespace profagent::importance {

namespace {

class MagnitudeCriterion : public torch_tk::ImportanceCriterion {
 public:
  MagnitudeCriterion(double p, CommonOptions options) : p_(p), options_(std::move(options)) {}

  Result<torch::Tensor> score(const torch_tk::ImportanceGroup& group,
                              torch_tk::GroupReduction reduction) override {
    torch::NoGradGuard no_grad;
    const double p = p_;
    auto member_score = [p](const torch_tk::ImportanceMember& member,
                            std::int64_t units) -> Result<torch::Tensor> {
      torch::Tensor magnitude = member.weight.detach().to(torch::kFloat64).abs();
      if (p != 1.0) magnitude = magnitude.pow(p);
      return torch_tk::sum_into_units(torch_tk::sum_over_other_dims(magnitude, member.dim), member, units);
    };
    PROFAGENT_ASSIGN_OR_RETURN(torch::Tensor scores,
                               torch_tk::reduce_members(group, reduction, options_.roles, member_score));
    return torch_tk::normalize_scores(scores, options_.normalization);
  }

 private:
  double p_;
  CommonOptions options_;
};

}  // namespace

ProviderFactory make_magnitude_factory(const std::string& id, double p) {
  ProviderFactory factory;
  factory.id = id;
  factory.interface = torch_tk::kImportanceInterface;
  factory.summary = p == 1.0 ? "L1 magnitude: Σ|w| of each unit's weights in the group's members"
                             : "L2 magnitude: Σw² of each unit's weights in the group's members";
  static const OptionsSchema<CommonOptions> schema = [] {
    OptionsSchema<CommonOptions> s;
    add_common_fields(s, /*with_roles=*/true);
    return s;
  }();
  bind_provider_options<CommonOptions>(factory, schema, [p](CommonOptions options) -> Result<std::unique_ptr<Provider>> {
    return std::unique_ptr<Provider>(std::make_unique<MagnitudeCriterion>(p, std::move(options)));
  });
  return factory;
}

}  // namespace profagent::importance

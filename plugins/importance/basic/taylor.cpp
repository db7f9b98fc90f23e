// taylor: first-order Taylor estimate of the loss change when a unit is removed (Molchanov et al.
// 2019). Removing a unit zeroes its weights w, so ΔL ≈ -Σ g·w over them. Per member, the unit's
// score is |Σ w·g| over its slices (multivariable, the default: the unit's weights go together), or
// Σ|w·g| (Torch-Pruning's default, multivariable: false); the members' scores are then reduced like
// the magnitudes'. Gradients come from compute_gradients on calibration batches.
#include <memory>
#include <string>
#include <utility>

#include "criteria.hpp"

namespace profagent::importance {

namespace {

class TaylorCriterion : public torch_tk::ImportanceCriterion {
 public:
  TaylorCriterion(bool multivariable, CommonOptions options)
      : multivariable_(multivariable), options_(std::move(options)) {}

  bool needs_gradients() const override { return true; }

  Result<torch::Tensor> score(const torch_tk::ImportanceGroup& group,
                              torch_tk::GroupReduction reduction) override {
    torch::NoGradGuard no_grad;
    const bool multivariable = multivariable_;
    auto member_score = [multivariable](const torch_tk::ImportanceMember& member,
                                        std::int64_t units) -> Result<torch::Tensor> {
      torch::Tensor product =
          member.weight.detach().to(torch::kFloat64) * member.grad.detach().to(torch::kFloat64);
      if (!multivariable) product = product.abs();
      torch::Tensor per_unit =
          torch_tk::sum_into_units(torch_tk::sum_over_other_dims(product, member.dim), member, units);
      return per_unit.abs();
    };
    PROFAGENT_ASSIGN_OR_RETURN(
        torch::Tensor scores,
        torch_tk::reduce_members(group, reduction, options_.roles, member_score, /*require_gradients=*/true));
    return torch_tk::normalize_scores(scores, options_.normalization);
  }

 private:
  bool multivariable_;
  CommonOptions options_;
};

struct TaylorOptions : CommonOptions {
  bool multivariable = true;
};

}  // namespace

ProviderFactory make_taylor_factory() {
  ProviderFactory factory;
  factory.id = "taylor";
  factory.interface = torch_tk::kImportanceInterface;
  factory.summary = "first-order Taylor |Σ w·g| per unit (needs gradients from calibration batches)";
  static const OptionsSchema<TaylorOptions> schema = [] {
    OptionsSchema<TaylorOptions> s;
    add_common_fields(s, /*with_roles=*/true);
    s.field("multivariable", &TaylorOptions::multivariable)
        .describe("true: |Σ w·g| over a unit's weights (they are removed together); false: Σ|w·g|");
    return s;
  }();
  bind_provider_options<TaylorOptions>(factory, schema, [](TaylorOptions options) -> Result<std::unique_ptr<Provider>> {
    const bool multivariable = options.multivariable;
    return std::unique_ptr<Provider>(std::make_unique<TaylorCriterion>(multivariable, std::move(options)));
  });
  return factory;
}

}  // namespace profagent::importance

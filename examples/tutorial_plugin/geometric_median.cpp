// geometric_median: each unit's summed Euclidean distance to the other units of its layer, measured
// on the producer members of a group (the conv/linear weights whose output dim the units index).
#include "geometric_median.hpp"

#include <memory>
#include <string>

#include <profagent/config_schema.hpp>
#include <profagent/torch/importance.hpp>

namespace tutorial {
namespace {

namespace tk = profagent::torch_tk;

// [size(dim)]: for each slice along the member's dim, the sum of its L2 distances to the other slices.
at::Tensor distance_sums(const tk::ImportanceMember& member) {
  const std::int64_t dim = member.dim < 0 ? member.dim + member.weight.dim() : member.dim;
  at::Tensor rows = member.weight.detach().to(at::kDouble).movedim(dim, 0).flatten(1);  // [n, rest]
  // ‖a−b‖² = ‖a‖² + ‖b‖² − 2·a·b, from one matrix product instead of n² difference vectors. Tensor
  // methods (add, sub), not operators: the operators live in <ATen/TensorOperators.h>, not included here.
  at::Tensor squared = rows.pow(2).sum(1);
  at::Tensor gram = rows.mm(rows.t());
  at::Tensor distances = squared.unsqueeze(1).add(squared.unsqueeze(0)).sub(gram, /*alpha=*/2).clamp_min(0).sqrt();
  return distances.sum(1);
}

class GeometricMedian : public tk::ImportanceCriterion {
 public:
  explicit GeometricMedian(tk::ScoreNormalization normalization) : normalization_(normalization) {}

  profagent::Result<at::Tensor> score(const tk::ImportanceGroup& group, tk::GroupReduction reduction) override {
    at::NoGradGuard no_grad;
    auto member_score = [](const tk::ImportanceMember& member, std::int64_t units) -> profagent::Result<at::Tensor> {
      return tk::sum_into_units(distance_sums(member), member, units);
    };
    // Only producers: a consumer's slices (input dims of the next layer) are not filters.
    PROFAGENT_ASSIGN_OR_RETURN(at::Tensor scores, tk::reduce_members(group, reduction, {tk::kRoleProducer}, member_score));
    return tk::normalize_scores(scores, normalization_);
  }

 private:
  tk::ScoreNormalization normalization_;
};

}  // namespace

profagent::ProviderFactory geometric_median_factory() {
  profagent::ProviderFactory factory;
  factory.id = "geometric_median";
  factory.interface = tk::kImportanceInterface;
  factory.summary = "FPGM: summed L2 distance of a unit's filter to the other filters of its layer";
  factory.config.add("normalize", profagent::ConfigType::kEnum)
      .choices({"none", "mean", "max", "sum"})
      .default_value("mean")
      .describe("scale a group's scores by their mean, max or sum so groups compare globally");
  factory.make = [](const profagent::Config& config) -> profagent::Result<std::unique_ptr<profagent::Provider>> {
    PROFAGENT_ASSIGN_OR_RETURN(tk::ScoreNormalization normalization,
                               tk::parse_score_normalization(config.get_string("normalize")));
    return std::unique_ptr<profagent::Provider>(std::make_unique<GeometricMedian>(normalization));
  };
  return factory;
}

}  // namespace tutorial

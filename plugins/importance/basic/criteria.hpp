#pragma once
// The importance_basic plugin's criteria (one factory per provider id) and the config fields they
// share. Internal to the plugin: third-party criteria use profagent/torch/importance.hpp directly.
#include <string>
#include <vector>

#include "profagent/config_schema.hpp"
#include "profagent/provider.hpp"
#include "profagent/torch/importance.hpp"

namespace profagent::importance {

// `normalize` (none|mean|max|sum, default mean as Torch-Pruning's normalizer) and, when `with_roles`,
// `roles` (the member roles a criterion scores, default producer, consumer, norm).
void add_common_fields(ConfigSchema& schema, bool with_roles);

struct CommonOptions {
  torch_tk::ScoreNormalization normalization = torch_tk::ScoreNormalization::kMean;
  std::vector<std::string> roles;
};
Result<CommonOptions> common_options(const Config& config, bool with_roles);

ProviderFactory make_magnitude_factory(const std::string& id, double p);  // "l1" (p = 1), "l2" (p = 2)
ProviderFactory make_bn_scale_factory();
ProviderFactory make_random_factory();
ProviderFactory make_taylor_factory();

}  // namespace profagent::importance

#pragma once
// The importance_basic plugin's criteria (one factory per provider id) and the config fields they
// share. Internal to the plugin: third-party criteria use profagent/torch/importance.hpp directly.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "profagent/config_schema.hpp"
#include "profagent/options.hpp"
#include "profagent/provider.hpp"
#include "profagent/torch/importance.hpp"

namespace profagent::importance {

struct CommonOptions {
  torch_tk::ScoreNormalization normalization = torch_tk::ScoreNormalization::kMean;
  std::vector<std::string> roles = {torch_tk::kRoleProducer, torch_tk::kRoleConsumer, torch_tk::kRoleNorm};
};

// The name of CommonOptions' initial normalization (the `normalize` default).
inline const char* default_normalization() { return torch_tk::to_string(CommonOptions{}.normalization); }

// Declares `normalize` (none|mean|max|sum, default mean as Torch-Pruning's normalizer) and, when
// `with_roles`, `roles` (the member roles a criterion scores, default producer, consumer, norm) on the
// schema of a criterion whose options derive from CommonOptions.
template <class Options>
void add_common_fields(OptionsSchema<Options>& schema, bool with_roles) {
  schema
      .field_with("normalize", ConfigType::kEnum,
                  [](const Json& value, Options& options) -> Status {
                    PROFAGENT_ASSIGN_OR_RETURN(options.normalization,
                                               torch_tk::parse_score_normalization(value.get<std::string>()));
                    return Status::ok();
                  })
      .choices({"none", "mean", "max", "sum"})
      .default_value(default_normalization())
      .describe(
          "divide a group's scores by their mean, max or sum, so that groups compare in a global "
          "ranking (the order within a group never changes); none keeps raw values");
  if (!with_roles) return;
  ConfigField role;
  role.type = ConfigType::kEnum;
  role.choices = {torch_tk::kRoleProducer, torch_tk::kRoleConsumer, torch_tk::kRoleNorm, torch_tk::kRoleBias,
                  torch_tk::kRoleOther};
  schema.field("roles", &CommonOptions::roles)
      .element(role)
      .min(1)
      .describe(
          "the group members that count: producer (output dim of conv/linear), consumer (input dim), "
          "norm (BN/LN/GN scale), bias (biases and norm shifts), other (class token, position "
          "embedding)");
}

ProviderFactory make_magnitude_factory(const std::string& id, double p);  // "l1" (p = 1), "l2" (p = 2)
ProviderFactory make_bn_scale_factory();
ProviderFactory make_random_factory();
ProviderFactory make_taylor_factory();

}  // namespace profagent::importance

#include "criteria.hpp"

namespace profagent::importance {

void add_common_fields(ConfigSchema& schema, bool with_roles) {
  schema.add("normalize", ConfigType::kEnum)
      .choices({"none", "mean", "max", "sum"})
      .default_value("mean")
      .describe(
          "divide a group's scores by their mean, max or sum, so that groups compare in a global "
          "ranking (the order within a group never changes); none keeps raw values");
  if (!with_roles) return;
  ConfigField role;
  role.type = ConfigType::kEnum;
  role.choices = {torch_tk::kRoleProducer, torch_tk::kRoleConsumer, torch_tk::kRoleNorm, torch_tk::kRoleBias,
                  torch_tk::kRoleOther};
  schema.add("roles", ConfigType::kList)
      .element(role)
      .min(1)
      .default_value(Json::array({torch_tk::kRoleProducer, torch_tk::kRoleConsumer, torch_tk::kRoleNorm}))
      .describe(
          "the group members that count: producer (output dim of conv/linear), consumer (input dim), "
          "norm (BN/LN/GN scale), bias (biases and norm shifts), other (class token, position "
          "embedding)");
}

Result<CommonOptions> common_options(const Config& config, bool with_roles) {
  CommonOptions options;
  PROFAGENT_ASSIGN_OR_RETURN(options.normalization,
                             torch_tk::parse_score_normalization(config.get_string("normalize")));
  if (with_roles)
    for (const Json& role : config.get_list("roles")) options.roles.push_back(role.get<std::string>());
  return options;
}

}  // namespace profagent::importance

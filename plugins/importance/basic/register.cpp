// The importance_basic plugin: providers l1, l2, bn_scale, random and taylor of interface
// "importance" (docs/architecture.md, "First-party agents and providers").
#include "criteria.hpp"
#include "profagent/plugin.hpp"

namespace {

void register_importance_basic(profagent::Registrar& registrar) {
  registrar.add_provider(profagent::importance::make_magnitude_factory("l1", 1.0));
  registrar.add_provider(profagent::importance::make_magnitude_factory("l2", 2.0));
  registrar.add_provider(profagent::importance::make_bn_scale_factory());
  registrar.add_provider(profagent::importance::make_random_factory());
  registrar.add_provider(profagent::importance::make_taylor_factory());
}

}  // namespace

PROFAGENT_PLUGIN("importance_basic", "0.1.0", register_importance_basic);

// The tutorial plugin's entry point: the descriptor the kernel reads and the register function it
// calls. The factories live in their own files so that tutorial_test.cpp links them without this one.
#include <profagent/plugin.hpp>
#include <profagent/torch/model_artifact.hpp>

#include "geometric_median.hpp"
#include "layer_census.hpp"

namespace {

void register_tutorial(profagent::Registrar& registrar) {
  registrar.add_agent(tutorial::layer_census_factory());
  registrar.add_provider(tutorial::geometric_median_factory());
  // layer_census reads models: a resumed run must be able to load the model artifacts it was given.
  profagent::add_model_artifact_loader(registrar);
}

}  // namespace

PROFAGENT_PLUGIN("tutorial", "1.0.0", register_tutorial);

#pragma once
// The tutorial's agent `layer_census`: reads a model and tells where its parameters are, per module
// type and in its largest layers. The factory is in its own file so that the unit test links it
// without the plugin's entry point (tutorial_plugin.cpp).
#include <profagent/agent.hpp>

namespace tutorial {

profagent::AgentFactory layer_census_factory();

}  // namespace tutorial

#pragma once
// The example plugin's factories, declared apart from the plugin's entry point so that a unit test can
// use them without loading the library.
#include <profagent/profagent.hpp>

namespace greeting {

profagent::AgentFactory greet_factory();  // config {name, times}; output greeting {text}
profagent::AgentFactory shout_factory();  // input text {text}; output loud {text} upper-cased
void register_greeting(profagent::Registrar& registrar);

}  // namespace greeting

// The plugin's entry point: the descriptor the kernel reads, and the register function it calls.
#include "greeting_agents.hpp"

PROFAGENT_PLUGIN("greeting", "1.0.0", greeting::register_greeting);
